package node

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/condis-project/condis/internal/promtest"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/uni"
)

// TestLoadMetrics: the metrics key is a host:port (an empty host listens
// everywhere, port 0 picks a free port); absent or "" it is off; anything
// else is one line naming the key and what is wrong.
func TestLoadMetrics(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{`"127.0.0.1:9464"`, "127.0.0.1:9464"},
		{`":9464"`, ":9464"},
		{`"[::1]:0"`, "[::1]:0"},
		{`""`, ""},
	} {
		c, err := Load(write(t, valid+"metrics = "+tc.value+"\n"))
		if err != nil || c.Metrics != tc.want {
			t.Errorf("metrics = %s: %q, %v; want %q", tc.value, c.Metrics, err, tc.want)
		}
	}
	if c, err := Load(write(t, valid)); err != nil || c.Metrics != "" {
		t.Errorf("no metrics key: %q, %v; want off", c.Metrics, err)
	}

	for _, tc := range []struct{ value, want string }{
		{`"9464"`, `: metrics: "9464": missing port in address (want host:port)`},
		{`"localhost:prometheus"`, `: metrics: "localhost:prometheus": port "prometheus" is not a number from 0 to 65535`},
		{`"::1:9464"`, `: metrics: "::1:9464": too many colons in address (want host:port; an IPv6 host goes in brackets: [2001:db8::1]:4800)`},
		{`9464`, `:7: metrics: is an integer, want a string`},
	} {
		path := write(t, valid+"metrics = "+tc.value+"\n")
		_, err := Load(path)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "metrics" {
			t.Errorf("metrics = %s: %v, want an *Error for key metrics", tc.value, err)
			continue
		}
		if got := err.Error(); got != path+tc.want || strings.Contains(got, "\n") {
			t.Errorf("metrics = %s:\n got %s\nwant %s", tc.value, got, path+tc.want)
		}
	}
}

// scrapeMetrics gets a node's /metrics and parses the exposition with the
// Prometheus text parser.
func scrapeMetrics(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	addr := n.MetricsAddr()
	if addr == nil {
		t.Fatal("the node serves no metrics")
	}
	return promtest.Scrape(t, "http://"+addr.String()+"/metrics")
}

// sample is the value of family name's sample with exactly labels (package
// promtest).
var sample = promtest.Sample

// metricCheck is one expected sample.
type metricCheck struct {
	name   string
	labels []string
	want   float64
}

func checkMetrics(t *testing.T, when string, fams map[string]*dto.MetricFamily, checks []metricCheck) {
	t.Helper()
	for _, c := range checks {
		if got, ok := sample(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s: %s%v = %v (there: %v), want %v", when, c.name, c.labels, got, ok, c.want)
		}
	}
}

// metricsPair is alpha, serving metrics on a free port, and beta (serving
// them too if betaMetrics), peers over QUIC on loopback, each with an echo
// listener.
func metricsPair(t *testing.T, betaMetrics bool) (alpha, beta *runningNode) {
	c := newCluster(t)
	aAddr, bAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	alpha = c.start(Config{Name: "alpha", Listen: aAddr, Peers: []Peer{{Name: "beta", Address: bAddr}}, Metrics: "127.0.0.1:0"})
	bcfg := Config{Name: "beta", Listen: bAddr, Peers: []Peer{{Name: "alpha", Address: aAddr}}}
	if betaMetrics {
		bcfg.Metrics = "127.0.0.1:0"
	}
	beta = c.start(bcfg)
	if !betaMetrics && beta.n.MetricsAddr() != nil {
		t.Errorf("beta serves metrics at %v without the key", beta.n.MetricsAddr())
	}
	return alpha, beta
}

// dialEcho calls beta/echo from alpha with tx and waits until the
// listener has the call too (it drops what comes before).
func dialEcho(t *testing.T, alpha, beta *runningNode, tx *Flowspec) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := DialCall(ctx, alpha.sock(), Request{Dest: "beta/echo", Reliable: true, Tx: tx,
		Rx: &Flowspec{Service: "best-effort", Peak: 1_000_000, MaxSDU: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for up := false; !up; {
		select {
		case e := <-beta.events:
			up = e.Event == EventCall
		case <-ctx.Done():
			t.Fatal("the listener never saw the call")
		}
	}
	return s
}

// hangUp ends the session's input and waits for its close frame, which
// comes once the call is closed (every SDU of it counted), and returns the
// SDUs that came back.
func hangUp(t *testing.T, s *Session) [][]byte {
	t.Helper()
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
	defer time.AfterFunc(20*time.Second, func() { s.Close() }).Stop()
	var data [][]byte
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		switch f.Type {
		case FrameData:
			data = append(data, f.Payload)
		case FrameClose:
			return data
		}
	}
}

// TestMetricsScrape: a node with the metrics key serves /metrics over
// HTTP, says where in its log, and what it serves parses and counts what
// happened: with a call up, one VC, the echo listener's SAP, the link up,
// one call connected and its setup time observed; once it is closed, the
// SDUs and octets each way and its release (cause 16, by this node); then
// a call refused by the far end (no such service: cause 88), and the
// Q.2931 messages of both calls by type. No contract was violated. Beta
// counts the same calls as incoming: one connected and released by the
// peer (16), one refused.
func TestMetricsScrape(t *testing.T) {
	alpha, beta := metricsPair(t, true)
	url := "http://" + alpha.n.MetricsAddr().String() + "/metrics"
	if l := alpha.log.String(); !strings.Contains(l, "serving metrics") || !strings.Contains(l, url) {
		t.Errorf("alpha's log does not say where it serves metrics (%s):\n%s", url, l)
	}

	s := dialEcho(t, alpha, beta, &Flowspec{Service: "best-effort", Peak: 1_000_000, MaxSDU: 1000})
	sent := [][]byte{bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 200), bytes.Repeat([]byte{3}, 300)}
	for _, sdu := range sent {
		if err := s.Send(sdu); err != nil {
			t.Fatal(err)
		}
	}
	for range sent { // the echoes: the call stays up meanwhile
		if f, err := s.Recv(); err != nil || f.Type != FrameData {
			t.Fatalf("echo: %+v, %v", f, err)
		}
	}
	up := scrapeMetrics(t, alpha.n)
	checkMetrics(t, "with the call up", up, []metricCheck{
		{"condis_vcs", nil, 1},
		{"condis_parties", nil, 0},
		{"condis_saps", nil, 1},
		{"condis_link_up", []string{"peer=beta"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=connected"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=refused"}, 0},
		{"condis_calls_total", []string{"direction=in", "result=connected"}, 0},
	})
	h := up["condis_call_setup_seconds"].GetMetric()
	if len(h) != 1 || h[0].Histogram.GetSampleCount() != 1 || h[0].Histogram.GetSampleSum() <= 0 || h[0].Histogram.GetSampleSum() > 20 {
		t.Errorf("condis_call_setup_seconds %v, want one observation, above 0 and below 20 s", h)
	}
	if back := hangUp(t, s); len(back) != 0 {
		t.Errorf("%d more SDUs after the echoes", len(back))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := DialCall(ctx, alpha.sock(), Request{Dest: "beta/nosuch"})
	wantRefused(t, "beta/nosuch", err, uni.CauseIncompatibleDestination, "")

	end := scrapeMetrics(t, alpha.n)
	checkMetrics(t, "after both calls", end, []metricCheck{
		{"condis_vc_sdus_total", []string{"direction=tx"}, 3},
		{"condis_vc_sdus_total", []string{"direction=rx"}, 3},
		{"condis_vc_bytes_total", []string{"direction=tx"}, 600},
		{"condis_vc_bytes_total", []string{"direction=rx"}, 600},
		{"condis_vc_dropped_sdus_total", []string{"direction=tx"}, 0},
		{"condis_vc_policed_sdus_total", nil, 0},
		{"condis_call_releases_total", []string{"cause=16"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=connected"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=refused"}, 1},
		{"condis_calls_total", []string{"direction=out", "result=failed"}, 0},
		{"condis_calls_total", []string{"direction=in", "result=refused"}, 0},
		{"condis_signalling_messages_total", []string{"direction=out", "type=SETUP"}, 2},
		{"condis_signalling_messages_total", []string{"direction=in", "type=CONNECT"}, 1},
		{"condis_signalling_messages_total", []string{"direction=out", "type=CONNECT ACKNOWLEDGE"}, 1},
		{"condis_signalling_messages_total", []string{"direction=out", "type=RELEASE"}, 1},
		{"condis_signalling_messages_total", []string{"direction=in", "type=RELEASE COMPLETE"}, 2},
		{"condis_signalling_messages_total", []string{"direction=in", "type=SETUP"}, 0},
		{"condis_link_up", []string{"peer=beta"}, 1},
	})
	if n := len(end["condis_call_releases_total"].GetMetric()); n != 2 { // "none" and "16"
		t.Errorf("release series %v, want none and 16 only", end["condis_call_releases_total"])
	}
	for _, m := range end["condis_contract_violations_total"].GetMetric() {
		t.Errorf("a contract violation: %v", m)
	}

	// Beta counted each event before its answer reached alpha.
	checkMetrics(t, "beta", scrapeMetrics(t, beta.n), []metricCheck{
		{"condis_calls_total", []string{"direction=in", "result=connected"}, 1},
		{"condis_calls_total", []string{"direction=in", "result=refused"}, 1},
		{"condis_calls_total", []string{"direction=in", "result=failed"}, 0},
		{"condis_calls_total", []string{"direction=out", "result=connected"}, 0},
		{"condis_call_releases_total", []string{"cause=16"}, 1},
		{"condis_signalling_messages_total", []string{"direction=in", "type=SETUP"}, 2},
		{"condis_signalling_messages_total", []string{"direction=out", "type=CONNECT"}, 1},
		{"condis_link_up", []string{"peer=alpha"}, 1},
		{"condis_saps", nil, 1},
	})
}

// TestMetricsPoliced: a call whose transmit flowspec allows one SDU of
// 1 000 octets and then 1 000 octets a second has nine of a burst of ten
// dropped by policing (each would wait a second or more, beyond the 100 ms
// of shaping): condis_vc_policed_sdus_total counts them, and they are the
// tx drops; one SDU went out.
func TestMetricsPoliced(t *testing.T) {
	alpha, beta := metricsPair(t, false)
	s := dialEcho(t, alpha, beta, &Flowspec{Service: "guaranteed", Rate: 1000, Bucket: 1000, Peak: 1000, MaxSDU: 1000})
	for i := range 10 {
		if err := s.Send(bytes.Repeat([]byte{byte(i)}, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	back := hangUp(t, s)
	fams := scrapeMetrics(t, alpha.n)
	checkMetrics(t, "after the burst", fams, []metricCheck{
		{"condis_vc_policed_sdus_total", nil, 9},
		{"condis_vc_dropped_sdus_total", []string{"direction=tx"}, 9},
		{"condis_vc_sdus_total", []string{"direction=tx"}, 1},
		{"condis_vc_bytes_total", []string{"direction=tx"}, 1000},
	})
	if len(back) > 1 {
		t.Errorf("%d SDUs echoed, want at most the one that went out", len(back))
	}
}

// TestMetricsAddressInUse: a node whose metrics address is taken does not
// start: Start returns one line naming the file, the key and the problem,
// and leaves nothing running (goleak checks at the end of the package).
func TestMetricsAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := newCluster(t)
	if _, err := pki.Issue(c.dir, "alpha"); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{File: filepath.Join(c.dir, "alpha.toml"), Name: "alpha", Listen: freeAddr(t, "127.0.0.1"),
		Control: filepath.Join(c.dir, "alpha.sock"), CA: filepath.Join(c.dir, "ca.pem"),
		Cert: filepath.Join(c.dir, "alpha.pem"), Key: filepath.Join(c.dir, "alpha.key"), Metrics: taken.Addr().String()}
	n, err := Start(cfg, StartOptions{})
	if err == nil {
		n.Close(context.Background())
		t.Fatal("Start succeeded with the metrics address taken")
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "metrics" || !strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Start: %v; want one line for key metrics saying the address is in use", err)
	}
}
