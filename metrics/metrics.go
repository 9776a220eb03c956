// Package metrics exports a running condis node to Prometheus: its calls,
// signalling, links and VC data, and the objects its mediator holds. It is
// the only package of condis that imports client_golang; the node's core
// packages know nothing of it. Each node has a registry of its own (never
// the process's default one), served as /metrics on the address of the
// node's `metrics` configuration key (see package node).
//
// The counters of events (calls, releases, setup times, links, signalling
// messages) are fed by the node's trace events (package trace); the rest
// is read when Prometheus scrapes, from counters the mediator and the call
// manager keep anyway ([ndis.Mediator.Live], [ndis.Mediator.ViolationCounts],
// node.Q2931.Totals, either topology's): the exporter adds its trace hooks to a call's path and
// nothing to an SDU's.
//
// # The metrics
//
// Calls, from the call manager's trace events:
//
//   - condis_calls_total{direction, result}: calls that came to an end of
//     their setup. direction is "out" (this node's client made the call)
//     or "in" (a peer called this node). result is
//     "connected": the call came up (out: MakeCallComplete with
//     NDIS_STATUS_SUCCESS; in: CallConnected);
//     "refused": out: the called node or the network turned the call down
//     with a cause (21 call rejected, 88 no such service, 49 QoS
//     unavailable, ...); in: this node refused it (no SAP, not allowed,
//     the client said no: the cause is in the trace and the logs);
//     "failed": out: the call got no answer or its path failed: no cause, or
//     27 destination out of order, 38 network out of order, 41 temporary
//     failure, 102 recovery on timer expiry; in: the caller or the network
//     ended the call after it was offered to a client, before it connected.
//   - condis_call_releases_total{cause}: calls that were up and ended, by
//     the Q.2931 cause that ended them ("16" normal call clearing, "27"
//     destination out of order after T309, ...; "none" when no cause was
//     recorded). Setups that failed or were refused are not releases: they
//     are in condis_calls_total.
//   - condis_call_setup_seconds: histogram of the time from NdisClMakeCall to
//     MakeCallComplete of this node's calls that connected.
//
// Links and signalling, from trace events:
//
//   - condis_link_up{peer}: 1 while the link to peer is up, else 0; every
//     configured peer is there from the start, at 0 until it connects.
//   - condis_signalling_messages_total{direction, type}: Q.2931 messages
//     sent ("out") to and received ("in") from peers, by message type as
//     Q.2931 names it ("SETUP", "CONNECT", "RELEASE COMPLETE", ...; a type
//     the codec does not know is "message type 0xNN", a message too short
//     or not Q.2931's "malformed").
//
// The mediator's objects, read at each scrape:
//
//   - condis_vcs: VCs the mediator holds (not yet deleted).
//   - condis_parties: parties of point-to-multipoint calls (a point-to-point
//     call has none), those being added included.
//   - condis_saps: SAPs registered (or being registered or deregistered).
//   - condis_contract_violations_total{rule}: CoNDIS contract violations by
//     rule ID ("R-CALL-5", ...; see docs/rules.md); no series until a rule
//     is first broken.
//
// VC data, every VC's counters summed since the node started (deleted VCs'
// included), read at each scrape:
//
//   - condis_vc_sdus_total{direction} and condis_vc_bytes_total{direction}:
//     SDUs (and their octets) sent ("tx": the transport took them) and
//     received ("rx": indicated to the client).
//   - condis_vc_dropped_sdus_total{direction}: SDUs dropped: "tx" completed
//     with a failure (too long, policed, link down, call closing), "rx"
//     arrived when the VC could not take them.
//   - condis_vc_policed_sdus_total: of the tx drops, SDUs that did not
//     conform to the call's transmit flowspec and could not be shaped to
//     conform within the MCM's MaxShapingDelay (NDIS_STATUS_RESOURCES).
//     Received SDUs are not policed: the sending node polices.
//   - condis_vc_shaped_sdus_total: SDUs the shaper held back before they
//     went out.
//
// The registry also has the Go runtime's and the process's standard
// collectors (go_*, process_*).
//
// # Cost
//
// The trace hooks run on the call manager's goroutines, some with its
// locks held: each does an atomic add on a child made in advance (a label
// value seen for the first time makes its child once, under the vector's
// lock for a moment), found in an array or a sync.Map; none waits for I/O
// or calls back into the node. An incoming call is remembered (a sync.Map
// entry under its VC's name) from its offer until it connects, is refused
// or ends, to tell a release from a setup that failed; the call manager
// traces one of those for every call it offers.
package metrics

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// Path is where the exporter serves the metrics.
const Path = "/metrics"

// SetupBuckets are the upper bounds, in seconds, of condis_call_setup_seconds'
// buckets: from an in-process call (tens of µs) to a SETUP answered just
// before T303 runs out twice (8 s).
var SetupBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Options configure an exporter.
type Options struct {
	// Peers are the node's configured peers: their condis_link_up is
	// there, at 0, before they first connect.
	Peers []string
}

// Call results, the values of condis_calls_total's result label.
const (
	resultConnected = iota
	resultRefused
	resultFailed
	nResults
)

var resultNames = [nResults]string{resultConnected: "connected", resultRefused: "refused", resultFailed: "failed"}

// Directions as indexes: out 0, in 1.
const (
	dirOut = iota
	dirIn
	nDirs
)

var dirNames = [nDirs]string{dirOut: "out", dirIn: "in"}

// msgNames are the type label's values, by message type octet.
var msgNames = func() (n [256]string) {
	for i := range n {
		n[i] = uni.MsgType(i).String()
	}
	return n
}()

// Metrics is one node's exporter: the event counters its Tracer feeds and
// the registry Prometheus scrapes. Make it with New, give its Tracer to the
// node's call manager, and call Watch once the mediator and the call
// manager exist.
type Metrics struct {
	reg *prometheus.Registry

	calls    [nDirs][nResults]prometheus.Counter
	releases *prometheus.CounterVec
	byCause  [256]atomic.Pointer[prometheus.Counter] // releases' children, made on first use
	noCause  prometheus.Counter
	setup    prometheus.Histogram

	linkUp *prometheus.GaugeVec
	links  sync.Map // peer name -> prometheus.Gauge

	signals   *prometheus.CounterVec
	byType    [nDirs][256]atomic.Pointer[prometheus.Counter] // signals' children, made on first use
	malformed [nDirs]prometheus.Counter

	// offered are the incoming calls offered and not yet connected,
	// refused or ended, by VC name.
	offered sync.Map

	watched atomic.Bool
}

// New makes an exporter with its own registry.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "condis_calls_total",
		Help: "Calls whose setup ended, by direction (out: made here; in: from a peer) and result (connected, refused, failed).",
	}, []string{"direction", "result"})
	for d := range nDirs {
		for r := range nResults {
			m.calls[d][r] = calls.WithLabelValues(dirNames[d], resultNames[r])
		}
	}
	m.releases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "condis_call_releases_total",
		Help: `Calls that were up and ended, by the Q.2931 cause that ended them ("none": no cause recorded).`,
	}, []string{"cause"})
	m.noCause = m.releases.WithLabelValues("none")
	m.setup = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "condis_call_setup_seconds",
		Help:    "Time from NdisClMakeCall to MakeCallComplete of the calls made here that connected.",
		Buckets: SetupBuckets,
	})
	m.linkUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "condis_link_up",
		Help: "1 while the link to the peer is up, else 0.",
	}, []string{"peer"})
	for _, p := range o.Peers {
		m.link(p).Set(0)
	}
	m.signals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "condis_signalling_messages_total",
		Help: "Q.2931 messages sent to (out) and received from (in) peers, by message type.",
	}, []string{"direction", "type"})
	for d := range nDirs {
		m.malformed[d] = m.signals.WithLabelValues(dirNames[d], "malformed")
		for t := range 256 {
			if uni.MsgType(t).Known() {
				m.signalCounter(d, uni.MsgType(t))
			}
		}
	}
	m.reg.MustRegister(calls, m.releases, m.setup, m.linkUp, m.signals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the exporter's registry: add collectors of your own to it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats at
// Path; any other path is not found.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// Tracer returns the trace hooks that feed the event counters; join it to
// the node's (trace.Join).
func (m *Metrics) Tracer() trace.Tracer {
	return trace.Tracer{Signal: m.onSignal, SignalUntimed: trace.Untimed, Link: m.onLink, Call: m.onCall}
}

// Mediator is what the exporter reads the mediator's objects from:
// *ndis.Mediator.
type Mediator interface {
	Live() ndis.LiveCounts
	ViolationCounts() map[string]uint64
}

// DataCounters is what the exporter reads the VC data totals from:
// the node's call manager, of either topology (node.Q2931).
type DataCounters interface {
	Totals() callctl.Stats
}

// Watch registers the collectors that read med and data at each scrape.
// Call it once, before serving; a second call returns an error.
func (m *Metrics) Watch(med Mediator, data DataCounters) error {
	if !m.watched.CompareAndSwap(false, true) {
		return errors.New("metrics: Watch called twice")
	}
	return m.reg.Register(&sources{med: med, data: data})
}

// onSignal counts a Q.2931 message by direction and type.
func (m *Metrics) onSignal(s trace.Signal) {
	d := dirIndex(s.Dir)
	if d < 0 {
		return
	}
	t, _, ok := s.Header()
	if !ok {
		m.malformed[d].Inc()
		return
	}
	m.signalCounter(d, t).Inc()
}

// signalCounter returns the counter of messages of type t in direction d,
// making it the first time.
func (m *Metrics) signalCounter(d int, t uni.MsgType) prometheus.Counter {
	p := &m.byType[d][t]
	if c := p.Load(); c != nil {
		return *c
	}
	c := m.signals.WithLabelValues(dirNames[d], msgNames[t]) // the same child for every caller
	p.Store(&c)
	return c
}

// onLink sets a peer's condis_link_up.
func (m *Metrics) onLink(l trace.Link) {
	v := 0.0
	if l.Up {
		v = 1
	}
	m.link(l.Peer).Set(v)
}

// link returns peer's condis_link_up gauge, making it the first time.
func (m *Metrics) link(peer string) prometheus.Gauge {
	if g, ok := m.links.Load(peer); ok {
		return g.(prometheus.Gauge)
	}
	g, _ := m.links.LoadOrStore(peer, m.linkUp.WithLabelValues(peer))
	return g.(prometheus.Gauge)
}

// onCall counts a call event (see the package documentation for what each
// counts).
func (m *Metrics) onCall(c trace.Call) {
	dir := dirOut
	if c.Incoming {
		dir = dirIn
	}
	switch c.Event {
	case trace.CallOffered:
		if c.VC != "" {
			m.offered.Store(c.VC, struct{}{})
		}
	case trace.CallConnected:
		m.calls[dir][resultConnected].Inc()
		if c.Incoming {
			m.forget(c.VC)
		} else if c.Setup > 0 {
			m.setup.Observe(c.Setup.Seconds())
		}
	case trace.CallRefused:
		m.calls[dirIn][resultRefused].Inc()
		m.forget(c.VC)
	case trace.CallFailed:
		m.calls[dirOut][outcome(c.Cause)].Inc()
	case trace.CallReleased:
		if c.Incoming && c.VC != "" {
			if _, wasOffered := m.offered.LoadAndDelete(c.VC); wasOffered {
				m.calls[dirIn][resultFailed].Inc() // it never connected
				return
			}
		}
		m.release(c.Cause).Inc()
	}
}

// forget drops an incoming call from the offered ones.
func (m *Metrics) forget(vc string) {
	if vc != "" {
		m.offered.Delete(vc)
	}
}

// outcome is the result of a call made here that did not connect: failed
// if no answer came or the path failed (no cause, or one of the causes the
// MCM and its links give for that), refused if the called node or the
// network answered with any other cause.
func outcome(c uni.Cause) int {
	switch c {
	case 0, uni.CauseDestinationOutOfOrder, uni.CauseNetworkOutOfOrder, uni.CauseTemporaryFailure, uni.CauseTimerExpiry:
		return resultFailed
	}
	return resultRefused
}

// release returns the counter of releases with cause c, making it the
// first time.
func (m *Metrics) release(c uni.Cause) prometheus.Counter {
	if c == 0 {
		return m.noCause
	}
	p := &m.byCause[c]
	if r := p.Load(); r != nil {
		return *r
	}
	r := m.releases.WithLabelValues(strconv.Itoa(int(c)))
	p.Store(&r)
	return r
}

func dirIndex(d trace.Direction) int {
	switch d {
	case trace.Out:
		return dirOut
	case trace.In:
		return dirIn
	}
	return -1
}

// sources reads the mediator's objects and the VC data totals at each
// scrape.
type sources struct {
	med  Mediator
	data DataCounters
}

var (
	descVcs        = prometheus.NewDesc("condis_vcs", "VCs the mediator holds (not yet deleted).", nil, nil)
	descParties    = prometheus.NewDesc("condis_parties", "Parties of point-to-multipoint calls, those being added included.", nil, nil)
	descSaps       = prometheus.NewDesc("condis_saps", "SAPs registered (or being registered or deregistered).", nil, nil)
	descViolations = prometheus.NewDesc("condis_contract_violations_total", "CoNDIS contract violations, by rule ID.", []string{"rule"}, nil)
	descSDUs       = prometheus.NewDesc("condis_vc_sdus_total", "SDUs sent (tx) and received (rx) on every VC since the node started.", []string{"direction"}, nil)
	descBytes      = prometheus.NewDesc("condis_vc_bytes_total", "Octets of the SDUs sent (tx) and received (rx) on every VC since the node started.", []string{"direction"}, nil)
	descDropped    = prometheus.NewDesc("condis_vc_dropped_sdus_total", "SDUs dropped: tx completed with a failure, rx arrived when the VC could not take them.", []string{"direction"}, nil)
	descPoliced    = prometheus.NewDesc("condis_vc_policed_sdus_total", "SDUs dropped because they did not conform to the transmit flowspec in time (NDIS_STATUS_RESOURCES).", nil, nil)
	descShaped     = prometheus.NewDesc("condis_vc_shaped_sdus_total", "SDUs held back by the shaper before they went out.", nil, nil)
)

// Describe sends every metric's description.
func (s *sources) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVcs, descParties, descSaps, descViolations, descSDUs, descBytes, descDropped, descPoliced, descShaped} {
		ch <- d
	}
}

// Collect reads the mediator's counts and the data totals.
func (s *sources) Collect(ch chan<- prometheus.Metric) {
	live := s.med.Live()
	ch <- prometheus.MustNewConstMetric(descVcs, prometheus.GaugeValue, float64(live.Vcs))
	ch <- prometheus.MustNewConstMetric(descParties, prometheus.GaugeValue, float64(live.Parties))
	ch <- prometheus.MustNewConstMetric(descSaps, prometheus.GaugeValue, float64(live.Saps))
	for rule, n := range s.med.ViolationCounts() {
		ch <- prometheus.MustNewConstMetric(descViolations, prometheus.CounterValue, float64(n), rule)
	}
	t := s.data.Totals()
	counter := counterTo(ch)
	counter(descSDUs, t.TxPackets, "tx")
	counter(descSDUs, t.RxPackets, "rx")
	counter(descBytes, t.TxBytes, "tx")
	counter(descBytes, t.RxBytes, "rx")
	counter(descDropped, t.TxDropped, "tx")
	counter(descDropped, t.RxDropped, "rx")
	counter(descPoliced, t.TxPoliced)
	counter(descShaped, t.TxShaped)
}

// counterTo returns a function that sends one counter sample to ch.
func counterTo(ch chan<- prometheus.Metric) func(d *prometheus.Desc, v uint64, labels ...string) {
	return func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
}

// Server serves an exporter over HTTP.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on addr (TCP, host:port; port 0 picks a free port) and
// serves m's Handler until Close.
func (m *Metrics) Serve(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv:  &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // returns ErrServerClosed at Close
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is where the metrics are: http://ADDR/metrics.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + Path }

// Close stops the server: it closes the listener and every connection, and
// returns once the server's goroutine has ended.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
