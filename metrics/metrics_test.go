package metrics

import (
	"net/http"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/condis-project/condis/internal/promtest"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMediator and fakeData stand for the node's mediator and MCM.
type fakeMediator struct {
	live       ndis.LiveCounts
	violations map[string]uint64
}

func (f *fakeMediator) Live() ndis.LiveCounts              { return f.live }
func (f *fakeMediator) ViolationCounts() map[string]uint64 { return f.violations }

type fakeData struct{ totals mcm.Stats }

func (f *fakeData) Totals() mcm.Stats { return f.totals }

// scrape and value read the exposition (package promtest).
var (
	scrape = promtest.Scrape
	value  = promtest.Sample
)

func msg(t uni.MsgType) []byte { return []byte{0x09, 3, 0, 0, 1, byte(t), 0x80, 0, 0} }

// TestEventsCounted: trace events become the counters the package
// documentation describes: calls by direction and result (an outgoing call
// refused by cause, failed without an answer; an incoming call offered and
// ended before it connected failed, not released), releases by cause,
// setup times, links, messages by type; the scrape-time families read the
// mediator and the data totals. The exposition parses.
func TestEventsCounted(t *testing.T) {
	m := New(Options{Peers: []string{"beta", "gamma"}})
	med := &fakeMediator{live: ndis.LiveCounts{Vcs: 7, Parties: 2, Saps: 3}, violations: map[string]uint64{"R-CALL-5": 2}}
	data := &fakeData{totals: mcm.Stats{TxPackets: 10, TxBytes: 1000, TxDropped: 4, TxPoliced: 3, TxShaped: 5, RxPackets: 9, RxBytes: 900, RxDropped: 1}}
	if err := m.Watch(med, data); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(med, data); err == nil {
		t.Error("a second Watch succeeded")
	}
	tr := m.Tracer()
	sig := func(d trace.Direction, b []byte) { tr.Signal(trace.Signal{Peer: "beta", Dir: d, Msg: b}) }
	sig(trace.Out, msg(uni.MsgSetup))
	sig(trace.Out, msg(uni.MsgSetup))
	sig(trace.In, msg(uni.MsgConnect))
	sig(trace.In, msg(0x42))    // a type the codec does not know
	sig(trace.In, []byte{0x09}) // too short
	sig(trace.In, msg(uni.MsgReleaseComplete))
	tr.Link(trace.Link{Peer: "beta", Up: true})
	tr.Link(trace.Link{Peer: "delta", Up: true}) // not configured (trust = "cluster")
	tr.Link(trace.Link{Peer: "delta", Up: false})

	call := func(c trace.Call) { tr.Call(c) }
	// Out: one connected in 3 ms, refused with 88 and 21, failed with 102
	// and without a cause; the connected one released by the peer (16).
	call(trace.Call{VC: "vc#1", Event: trace.CallConnected, Setup: 3 * time.Millisecond})
	call(trace.Call{VC: "vc#2", Event: trace.CallFailed, Cause: uni.CauseIncompatibleDestination})
	call(trace.Call{VC: "vc#3", Event: trace.CallFailed, Cause: uni.CauseCallRejected})
	call(trace.Call{VC: "vc#4", Event: trace.CallFailed, Cause: uni.CauseTimerExpiry})
	call(trace.Call{VC: "vc#5", Event: trace.CallFailed})
	call(trace.Call{VC: "vc#1", Event: trace.CallReleased, Cause: uni.CauseNormalCallClearing, ByPeer: true})
	// In: one offered and connected, then released after T309 (27); one
	// refused before it had a VC, one refused by the client; one offered
	// and ended by the caller before it connected.
	call(trace.Call{VC: "vc#6", Incoming: true, Event: trace.CallOffered})
	call(trace.Call{VC: "vc#6", Incoming: true, Event: trace.CallConnected})
	call(trace.Call{VC: "vc#6", Incoming: true, Event: trace.CallReleased, Cause: uni.CauseDestinationOutOfOrder})
	call(trace.Call{Incoming: true, Event: trace.CallRefused, Cause: uni.CauseIncompatibleDestination})
	call(trace.Call{VC: "vc#7", Incoming: true, Event: trace.CallOffered})
	call(trace.Call{VC: "vc#7", Incoming: true, Event: trace.CallRefused, Cause: uni.CauseCallRejected})
	call(trace.Call{VC: "vc#8", Incoming: true, Event: trace.CallOffered})
	call(trace.Call{VC: "vc#8", Incoming: true, Event: trace.CallReleased, Cause: uni.CauseNormalCallClearing, ByPeer: true})
	// A release without a recorded cause.
	call(trace.Call{VC: "vc#9", Event: trace.CallReleased})

	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fams := scrape(t, srv.URL())

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"condis_calls_total", []string{"direction=out", "result=connected"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=refused"}, 2},
		{"condis_calls_total", []string{"direction=out", "result=failed"}, 2},
		{"condis_calls_total", []string{"direction=in", "result=connected"}, 1},
		{"condis_calls_total", []string{"direction=in", "result=refused"}, 2},
		{"condis_calls_total", []string{"direction=in", "result=failed"}, 1},
		{"condis_call_releases_total", []string{"cause=16"}, 1},
		{"condis_call_releases_total", []string{"cause=27"}, 1},
		{"condis_call_releases_total", []string{"cause=none"}, 1},
		{"condis_link_up", []string{"peer=beta"}, 1},
		{"condis_link_up", []string{"peer=gamma"}, 0},
		{"condis_link_up", []string{"peer=delta"}, 0},
		{"condis_signalling_messages_total", []string{"direction=out", "type=SETUP"}, 2},
		{"condis_signalling_messages_total", []string{"direction=in", "type=CONNECT"}, 1},
		{"condis_signalling_messages_total", []string{"direction=in", "type=RELEASE COMPLETE"}, 1},
		{"condis_signalling_messages_total", []string{"direction=in", "type=message type 0x42"}, 1},
		{"condis_signalling_messages_total", []string{"direction=in", "type=malformed"}, 1},
		{"condis_signalling_messages_total", []string{"direction=out", "type=RELEASE"}, 0},
		{"condis_vcs", nil, 7},
		{"condis_parties", nil, 2},
		{"condis_saps", nil, 3},
		{"condis_contract_violations_total", []string{"rule=R-CALL-5"}, 2},
		{"condis_vc_sdus_total", []string{"direction=tx"}, 10},
		{"condis_vc_sdus_total", []string{"direction=rx"}, 9},
		{"condis_vc_bytes_total", []string{"direction=tx"}, 1000},
		{"condis_vc_bytes_total", []string{"direction=rx"}, 900},
		{"condis_vc_dropped_sdus_total", []string{"direction=tx"}, 4},
		{"condis_vc_dropped_sdus_total", []string{"direction=rx"}, 1},
		{"condis_vc_policed_sdus_total", nil, 3},
		{"condis_vc_shaped_sdus_total", nil, 5},
	} {
		got, ok := value(fams, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (there: %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value(fams, "condis_call_releases_total", "cause=0"); ok {
		t.Error(`a release without a cause is labelled "0", want "none"`)
	}
	if n := len(fams["condis_call_releases_total"].GetMetric()); n != 3 { // none, 16, 27 and nothing else
		t.Errorf("%d release series, want 3 (none, 16, 27): %v", n, fams["condis_call_releases_total"])
	}
	h := fams["condis_call_setup_seconds"].GetMetric()
	if len(h) != 1 || h[0].Histogram.GetSampleCount() != 1 || h[0].Histogram.GetSampleSum() != 0.003 {
		t.Errorf("condis_call_setup_seconds %v, want one observation of 0.003", h)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("no Go runtime or process metrics")
	}
	m.offered.Range(func(k, _ any) bool {
		t.Errorf("incoming call %v still remembered as offered", k)
		return true
	})
}

// TestServerNotFound: the server answers /metrics only.
func TestServerNotFound(t *testing.T) {
	m := New(Options{})
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + srv.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %s, want 404", resp.Status)
	}
}

// TestConcurrentFirstUse: goroutines counting a message type and a release
// cause seen for the first time at once all count on one series.
func TestConcurrentFirstUse(t *testing.T) {
	m := New(Options{})
	tr := m.Tracer()
	const goroutines, each = 8, 100
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				tr.Signal(trace.Signal{Dir: trace.In, Msg: msg(0x77)})
				tr.Call(trace.Call{Event: trace.CallReleased, Cause: uni.CauseUserBusy})
			}
		})
	}
	wg.Wait()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	if v, _ := value(byName, "condis_signalling_messages_total", "direction=in", "type=message type 0x77"); v != goroutines*each {
		t.Errorf("messages of type 0x77: %v, want %d", v, goroutines*each)
	}
	if v, _ := value(byName, "condis_call_releases_total", "cause=17"); v != goroutines*each {
		t.Errorf("releases with cause 17: %v, want %d", v, goroutines*each)
	}
}
