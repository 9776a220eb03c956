package vcnet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/q2931"
)

// holder is a CoNDIS client on a node that holds the calls offered to its
// service: it answers ProtocolClIncomingCall with NDIS_STATUS_PENDING and
// completes the answer (accepting) only when the test runs its loop.
type holder struct {
	c   *memdrv.Client
	fab *memdrv.Fabric
}

// hold binds a holder to n and registers service; it is torn down (SAP,
// AF, binding) when the test ends.
func hold(t *testing.T, n *node.Node, service string) *holder {
	t.Helper()
	h := &holder{fab: memdrv.NewFabric()}
	c, st := memdrv.NewClient(n.Mediator, "holder", n.CM.Adapter(), h.fab)
	if st != ndis.StatusSuccess {
		t.Fatalf("bind the holder: %v", st)
	}
	h.c = c
	c.Sap = q2931.ServiceSap
	h.until(t, "the holder's AF open", func() bool {
		a := c.Af()
		return a != nil && memdrv.See(c, func() bool { return a.Open.Done })
	})
	sap := c.RegisterSap(c.Af(), service)
	h.until(t, "the holder's SAP", func() bool {
		return memdrv.See(c, func() bool { return sap.Register.Done && sap.Register.Status == ndis.StatusSuccess })
	})
	c.SetMode(memdrv.Pend) // from now on an answer waits for the loop
	t.Cleanup(func() {
		c.DeregisterSap(sap)
		h.until(t, "the holder's SAP deregistered", func() bool { return memdrv.See(c, func() bool { return sap.Deregister.Done }) })
		a := c.Af()
		c.CloseAf(a)
		h.until(t, "the holder's AF closed", func() bool { return memdrv.See(c, func() bool { return a.Close.Done }) })
		if st := c.Unbind(); st != ndis.StatusSuccess {
			t.Errorf("unbind the holder: %v", st)
		}
	})
	return h
}

// until runs the holder's loop (completing what it pended) until cond
// holds, for at most 10 s.
func (h *holder) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		h.fab.Run()
		time.Sleep(time.Millisecond)
	}
}

// offered waits, without running the loop (the answer stays pended), until
// a call is offered to the holder, and returns its VC.
func (h *holder) offered(t *testing.T) *memdrv.ClientVc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v := h.c.LastIncoming(); v != nil && memdrv.See(h.c, func() bool { return v.Offered > 0 }) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatal("no call was offered to the holder")
		}
		time.Sleep(time.Millisecond)
	}
}

// vcsOf are the handles of the VCs n's mediator holds.
func vcsOf(n *node.Node) []string {
	var out []string
	for _, v := range n.Mediator.Snapshot().Vcs {
		out = append(out, v.Handle)
	}
	return out
}

// TestCancelDuringSetup: a context cancelled while the far side holds the
// incoming call (its answer pended) makes DialContext return ctx's error
// at once; the call is closed as soon as its setup completes (CoNDIS has
// no abort of a pended NdisClMakeCall): the far side sees it connected and
// then released, and neither node keeps a VC. Embedded, and over alpha's
// control socket.
func TestCancelDuringSetup(t *testing.T) {
	for _, backend := range []string{"embedded", "socket"} {
		t.Run(backend, func(t *testing.T) {
			p := startPair(t)
			nw := p.anet
			if backend == "socket" {
				nw = Socket(p.serveAlphaSocket(t))
				defer nw.Close(context.Background())
			}
			h := hold(t, p.beta, "slow")
			before := len(vcsOf(p.alpha))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dialed := make(chan error, 1)
			go func() {
				c, err := (&Dialer{Network: nw}).DialVC(ctx, "beta/slow")
				if c != nil {
					c.Close()
				}
				dialed <- err
			}()
			v := h.offered(t)
			select {
			case err := <-dialed:
				t.Fatalf("DialContext returned %v while the far side held the call", err)
			default:
			}
			cancel()
			select {
			case err := <-dialed:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("DialContext: %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("DialContext did not return after its context was cancelled")
			}
			if got := memdrv.See(h.c, func() int { return v.Connected }); got != 0 {
				t.Fatalf("the held call connected %d times before its answer", got)
			}

			// The far side answers now: the call comes up, and alpha
			// closes it at once.
			h.until(t, "the held call released", func() bool {
				return memdrv.See(h.c, func() bool { return v.CloseIndicated > 0 && v.Close.Done })
			})
			if got := memdrv.See(h.c, func() memdrv.Result { return v.Answer }); got.Status != ndis.StatusSuccess || !got.ExactlyOnce() {
				t.Errorf("the holder's answer: %v", got)
			}
			if st := memdrv.See(h.c, func() ndis.Status { return v.CloseStatus }); st != ndis.StatusSuccess {
				t.Errorf("the far side saw the call closed with %v, want a normal release (NDIS_STATUS_SUCCESS)", st)
			}
			if log := h.c.Log(); !slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, "IncomingCloseCall") }) {
				t.Errorf("the holder never saw the call closed: %q", log)
			}
			h.until(t, "no VC on either node", func() bool {
				return len(vcsOf(p.alpha)) == before && len(vcsOf(p.beta)) == 0
			})
			if backend == "socket" {
				calls, err := node.ListCalls(ctxT(t), p.alpha.Config.Control)
				if err != nil || len(calls) != 0 {
					t.Errorf("alpha's calls after the cancel: %+v, %v; want none", calls, err)
				}
			}
		})
	}
}
