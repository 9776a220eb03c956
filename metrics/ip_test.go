package metrics

import (
	"testing"

	"github.com/condis-project/condis/ipvc"
)

type fakeIP struct{ st ipvc.Stats }

func (f *fakeIP) Stats() ipvc.Stats { return f.st }

// TestIPCounters: WatchIP exposes IP over condis's counters under the
// names and labels its help texts give, read at each scrape.
func TestIPCounters(t *testing.T) {
	m := New(Options{})
	ip := &fakeIP{st: ipvc.Stats{TxPackets: 10, TxBytes: 1200, RxPackets: 9, RxBytes: 1100, QueueDrops: 3, NoRoute: 1, Spoofed: 2,
		TooBig: 4, SendErrors: 5, DeviceErrors: 6, ICMPSent: 7, Calls: 4, Connected: 3, Refused: 1, Accepted: 2, Rejected: 8,
		Closed: 5, IdleClosed: 2}}
	if err := m.WatchIP(ip); err != nil {
		t.Fatal(err)
	}
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ip.st.TxPackets = 11 // read at the scrape, not at WatchIP
	fams := scrape(t, srv.URL())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"condis_ip_packets_total", []string{"direction=tx"}, 11},
		{"condis_ip_packets_total", []string{"direction=rx"}, 9},
		{"condis_ip_bytes_total", []string{"direction=tx"}, 1200},
		{"condis_ip_bytes_total", []string{"direction=rx"}, 1100},
		{"condis_ip_dropped_packets_total", []string{"reason=queue_full"}, 3},
		{"condis_ip_dropped_packets_total", []string{"reason=no_route"}, 1},
		{"condis_ip_dropped_packets_total", []string{"reason=spoofed"}, 2},
		{"condis_ip_dropped_packets_total", []string{"reason=too_big"}, 4},
		{"condis_ip_dropped_packets_total", []string{"reason=send_error"}, 5},
		{"condis_ip_dropped_packets_total", []string{"reason=device"}, 6},
		{"condis_ip_icmp_sent_total", nil, 7},
		{"condis_ip_calls_total", []string{"direction=out", "result=connected"}, 3},
		{"condis_ip_calls_total", []string{"direction=out", "result=failed"}, 1},
		{"condis_ip_calls_total", []string{"direction=in", "result=accepted"}, 2},
		{"condis_ip_calls_total", []string{"direction=in", "result=refused"}, 8},
		{"condis_ip_vcs_closed_total", []string{"reason=idle"}, 2},
		{"condis_ip_vcs_closed_total", []string{"reason=other"}, 3},
	} {
		if v, ok := value(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}
