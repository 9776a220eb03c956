package ladder_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is two or more nodes — a mediator, an MCM, memdrv clients — on
// transport/sim inside a synctest bubble, every node's events going to one
// recorder.
type world struct {
	t     *testing.T
	net   *sim.Network
	nodes []*node
	rec   recorder
}

type node struct {
	name    string
	m       *ndis.Mediator
	d       *mcm.MCM
	ep      transport.Endpoint
	fab     *memdrv.Fabric
	clients []*memdrv.Client
}

// recorder keeps every event in the order the hooks gave them.
type recorder struct {
	mu     sync.Mutex
	events []ladder.Event
}

func (r *recorder) add(e ladder.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []ladder.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ladder.Event(nil), r.events...)
}

func newWorld(t *testing.T) *world {
	return &world{t: t, net: sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}, DetectTimeout: time.Second})}
}

func (w *world) addNode(name string) *node {
	w.t.Helper()
	onNDIS, tracer := ladder.Hooks(name, w.rec.add)
	n := &node{name: name, fab: memdrv.NewFabric()}
	n.m = ndis.New(ndis.Options{Name: name, Trace: onNDIS, OnViolation: func(v ndis.Violation) {
		w.t.Errorf("%s: contract violation %v", name, v)
	}})
	timers := uni.DefaultTimers()
	d, err := mcm.New(n.m, mcm.Config{Name: name, Timers: timers, Tracer: tracer})
	if err != nil {
		w.t.Fatal(err)
	}
	n.d = d
	if n.ep, err = w.net.Endpoint(name, d.Handler()); err != nil {
		w.t.Fatal(err)
	}
	d.Attach(n.ep)
	w.nodes = append(w.nodes, n)
	return n
}

func (w *world) client(n *node, name string) *memdrv.Client {
	w.t.Helper()
	c, st := memdrv.NewClient(n.m, name, n.d.Adapter(), n.fab)
	if st != ndis.StatusSuccess {
		w.t.Fatalf("binding %s: %v", name, st)
	}
	c.Sap = q2931.ServiceSap
	n.clients = append(n.clients, c)
	w.waitFor(name+" opened the AF", func() bool {
		a := c.Af()
		return a != nil && memdrv.See(c, func() bool { return a.Open.Done })
	})
	return c
}

func (w *world) listen(c *memdrv.Client, service string) {
	w.t.Helper()
	s := c.RegisterSap(c.Af(), service)
	w.waitFor("SAP "+service, func() bool { return memdrv.See(c, func() bool { return s.Register.Done }) })
	if st := memdrv.See(c, func() ndis.Status { return s.Register.Status }); st != ndis.StatusSuccess {
		w.t.Fatalf("register %s: %v", service, st)
	}
}

// run runs the clients' Loops until the bubble settles: every goroutine
// blocked and nothing left for the clients to do. Waiting for the bubble
// makes the order of events at one instant of virtual time, and so the
// charts, the same on every run.
func (w *world) run() {
	for {
		synctest.Wait()
		ran := 0
		for _, n := range w.nodes {
			ran += n.fab.Run()
		}
		if ran == 0 {
			return
		}
	}
}

func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		w.run()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pause lets d of virtual time pass, running the clients.
func (w *world) pause(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		w.run()
		time.Sleep(time.Millisecond)
	}
}

// makeCall creates a VC on c and calls node/service; it waits for the
// MakeCall's outcome.
func (w *world) makeCall(c *memdrv.Client, node, service string) *memdrv.ClientVc {
	w.t.Helper()
	v, st := c.CreateVc(c.Af())
	if st != ndis.StatusSuccess {
		w.t.Fatalf("CreateVc: %v", st)
	}
	c.MakeCall(v, q2931.CallParams(node, service, bestEffort, bestEffort, false), false)
	w.waitFor("MakeCall's outcome", func() bool { return memdrv.See(c, func() bool { return v.Make.Done }) })
	return v
}

var bestEffort = ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, TokenRate: ndis.QoSNotSpecified,
	TokenBucketSize: ndis.QoSNotSpecified, PeakBandwidth: 4_800_000, Latency: ndis.QoSNotSpecified,
	DelayVariation: ndis.QoSNotSpecified, MaxSduSize: 1000, MinimumPolicedSize: ndis.QoSNotSpecified}

// close shuts the nodes down; the calls are over by then.
func (w *world) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, len(w.nodes))
	for _, n := range w.nodes {
		go func() { errs <- n.d.Shutdown(ctx) }()
	}
	for _, n := range w.nodes {
		for _, c := range n.clients {
			w.waitFor(c.Name+" closed its AF", func() bool {
				a := c.Af()
				return a == nil || memdrv.See(c, func() bool { return a.Close.Done })
			})
			c.Unbind()
		}
	}
	for range w.nodes {
		var err error
		w.waitFor("shutdown", func() bool {
			select {
			case err = <-errs:
				return true
			default:
				return false
			}
		})
		if err != nil {
			w.t.Error(err)
		}
	}
	for _, n := range w.nodes {
		n.ep.Close()
	}
	w.net.Close()
}
