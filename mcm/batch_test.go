package mcm_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// batchLog records the SendBatch calls of the links it wraps.
type batchLog struct {
	mu      sync.Mutex
	batches [][][]byte
}

// batchLink is a transport.BatchSender over a link that has none: it
// records each batch and sends its messages one by one.
type batchLink struct {
	transport.Link
	log *batchLog
}

func (l *batchLink) SendBatch(msgs [][]byte) error {
	l.log.mu.Lock()
	l.log.batches = append(l.log.batches, append([][]byte(nil), msgs...))
	l.log.mu.Unlock()
	for _, m := range msgs {
		if err := l.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// addBatchNode is addNode with the node's links wrapped in batchLinks.
func (w *world) addBatchNode(name string, log *batchLog) *node {
	w.t.Helper()
	n := &node{w: w, name: name, fab: memdrv.NewFabric()}
	n.m = ndis.New(ndis.Options{Name: name, OnViolation: n.onViolation})
	d, err := mcm.New(n.m, mcm.Config{Name: name, Timers: w.timers, Logger: logger()})
	if err != nil {
		w.t.Fatal(err)
	}
	n.d = d
	h := d.Handler()
	ep, err := w.net.Endpoint(name, transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		return h.LinkUp(&batchLink{Link: l, log: log})
	}))
	if err != nil {
		w.t.Fatal(err)
	}
	n.ep = ep
	d.Attach(ep)
	w.nodes = append(w.nodes, n)
	return n
}

// TestSignallingBatched: messages that queue up together for one link go
// in one SendBatch, in order, each once. A node shutting down releases all
// its calls at once: one batch of RELEASEs, and every call at the far end
// is closed once.
func TestSignallingBatched(t *testing.T) {
	const n = 20
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Seed: 3})
		defer w.close()
		log := &batchLog{}
		a, b := w.addBatchNode("a", log), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		for range n {
			w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false))
		}
		log.mu.Lock()
		log.batches = nil
		log.mu.Unlock()

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- a.d.Shutdown(ctx) }()
		w.waitFor("every call closed at b", func() bool {
			in := cb.Incoming()
			return len(in) == n && memdrv.See(cb, func() bool {
				for _, v := range in {
					if !v.Close.Done {
						return false
					}
				}
				return true
			})
		})
		in := cb.Incoming()
		memdrv.See(cb, func() bool {
			for i, v := range in {
				if v.CloseIndicated != 1 || !v.Close.ExactlyOnce() {
					t.Errorf("bob's call %d: %d incoming closes, close %v", i, v.CloseIndicated, v.Close)
				}
			}
			return true
		})

		log.mu.Lock()
		defer log.mu.Unlock()
		var first [][]byte
		for _, batch := range log.batches {
			if len(batch) > 1 {
				first = batch
				break
			}
		}
		if len(first) != n {
			t.Fatalf("batches sent: %d; the first of more than one message has %d, want the %d RELEASEs", len(log.batches), len(first), n)
		}
		refs := map[uint32]bool{}
		for i, raw := range first {
			m, err := uni.Decode(raw)
			if err != nil {
				t.Fatalf("message %d of the batch: %v", i, err)
			}
			if m.Type != uni.MsgRelease {
				t.Errorf("message %d of the batch is %v, want RELEASE", i, m.Type)
			}
			refs[m.CallRef.Value] = true
		}
		if len(refs) != n {
			t.Errorf("the batch releases %d distinct calls, want %d", len(refs), n)
		}
		cancel()
		<-shut
	})
}

// setupHolder holds the SETUPs a link delivers until it has n, then
// delivers them with one Messages call: the MCM decodes them all in one
// turn before it runs the mediator work of the first.
type setupHolder struct {
	transport.LinkHandler
	mu   sync.Mutex
	n    int
	held [][]byte
}

func (h *setupHolder) Message(msg []byte) {
	if m, err := uni.Decode(msg); err == nil && m.Type == uni.MsgSetup {
		h.mu.Lock()
		h.held = append(h.held, msg)
		if len(h.held) < h.n {
			h.mu.Unlock()
			return
		}
		batch := h.held
		h.held = nil
		h.mu.Unlock()
		h.LinkHandler.(transport.BatchHandler).Messages(batch)
		return
	}
	h.LinkHandler.Message(msg)
}

// TestBatchedSetupsOfferedEachItsOwn: SETUPs decoded in one turn (the
// uni.Link lends each decoded message only until it decodes the next,
// while the MCM runs the mediator work after the turn) are each offered
// with what they asked for: every SDU size is offered once.
func TestBatchedSetupsOfferedEachItsOwn(t *testing.T) {
	const n = 4
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Seed: 5})
		defer w.close()
		a := w.addNode("a", nil)
		b := &node{w: w, name: "b", fab: memdrv.NewFabric()}
		b.m = ndis.New(ndis.Options{Name: "b", OnViolation: b.onViolation})
		d, err := mcm.New(b.m, mcm.Config{Name: "b", Timers: w.timers, Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		b.d = d
		h := d.Handler()
		ep, err := w.net.Endpoint("b", transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
			return &setupHolder{LinkHandler: h.LinkUp(l), n: n}
		}))
		if err != nil {
			t.Fatal(err)
		}
		b.ep = ep
		d.Attach(ep)
		w.nodes = append(w.nodes, b)

		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		sdu := uint32(0)
		vs := w.makeCalls(ca, n, func() *ndis.CallParameters {
			sdu += 100
			return q2931.CallParams("b", "echo", bestEffort(sdu), bestEffort(sdu+1), false)
		})
		for i, v := range vs {
			if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
				t.Fatalf("call %d: MakeCall %v", i, r)
			}
		}
		offered := map[[2]uint32]int{}
		for _, v := range cb.Incoming() {
			memdrv.See(cb, func() bool {
				cm := v.Params.CallMgrParameters
				offered[[2]uint32{cm.Receive.MaxSduSize, cm.Transmit.MaxSduSize}]++
				return true
			})
		}
		for i := uint32(1); i <= n; i++ {
			if k := [2]uint32{100 * i, 100*i + 1}; offered[k] != 1 {
				t.Errorf("calls offered with receive/transmit SDU sizes %v: %d, want 1 (all offered: %v)", k, offered[k], offered)
			}
		}
	})
}
