package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/condis-project/condis/ipvc"
)

// IPCounters is what the exporter reads IP over condis's counters from:
// *ipvc.Interface.
type IPCounters interface {
	Stats() ipvc.Stats
}

// WatchIP registers the collector of IP over condis's counters, read
// from ip at each scrape. Call it once, before serving, on a node with an
// [ip] section.
func (m *Metrics) WatchIP(ip IPCounters) error {
	return m.reg.Register(ipSource{ip})
}

type ipSource struct{ ip IPCounters }

var (
	descIPPackets = prometheus.NewDesc("condis_ip_packets_total", "IP packets carried over VCs: sent on them (tx) and received from them into the device (rx).", []string{"direction"}, nil)
	descIPBytes   = prometheus.NewDesc("condis_ip_bytes_total", "Octets of the IP packets carried over VCs, by direction (tx, rx).", []string{"direction"}, nil)
	descIPDropped = prometheus.NewDesc("condis_ip_dropped_packets_total", "IP packets dropped, by reason: queue_full (the call being set up had its queue full), no_route, spoofed (source not routed to the sending node), too_big, send_error, device.", []string{"reason"}, nil)
	descIPICMP    = prometheus.NewDesc("condis_ip_icmp_sent_total", "ICMP errors written into the device (unreachable, too big).", nil, nil)
	descIPCalls   = prometheus.NewDesc("condis_ip_calls_total", "IP calls by direction (out: made on a packet's demand; in: from a routed node) and result (out: connected or failed; in: accepted or refused).", []string{"direction", "result"}, nil)
	descIPClosed  = prometheus.NewDesc("condis_ip_vcs_closed_total", "IP VCs gone, by reason: idle (idle_timeout), other (released by the far end, the network or shutdown).", []string{"reason"}, nil)
)

// Describe sends every IP metric's description.
func (s ipSource) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIPPackets, descIPBytes, descIPDropped, descIPICMP, descIPCalls, descIPClosed} {
		ch <- d
	}
}

// Collect reads the counters.
func (s ipSource) Collect(ch chan<- prometheus.Metric) {
	st := s.ip.Stats()
	counter := counterTo(ch)
	counter(descIPPackets, st.TxPackets, "tx")
	counter(descIPPackets, st.RxPackets, "rx")
	counter(descIPBytes, st.TxBytes, "tx")
	counter(descIPBytes, st.RxBytes, "rx")
	counter(descIPDropped, st.QueueDrops, "queue_full")
	counter(descIPDropped, st.NoRoute, "no_route")
	counter(descIPDropped, st.Spoofed, "spoofed")
	counter(descIPDropped, st.TooBig, "too_big")
	counter(descIPDropped, st.SendErrors, "send_error")
	counter(descIPDropped, st.DeviceErrors, "device")
	counter(descIPICMP, st.ICMPSent)
	counter(descIPCalls, st.Connected, "out", "connected")
	counter(descIPCalls, st.Refused, "out", "failed")
	counter(descIPCalls, st.Accepted, "in", "accepted")
	counter(descIPCalls, st.Rejected, "in", "refused")
	counter(descIPClosed, st.IdleClosed, "idle")
	counter(descIPClosed, st.Closed-min(st.IdleClosed, st.Closed), "other")
}
