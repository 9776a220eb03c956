package memdrv

import (
	"fmt"
	"testing"

	"github.com/condis-project/condis/ndis"
)

// Once calls have ended and their VCs are deleted, a call manager keeps
// nothing of them: no VC on its list and no port in the switch's directory
// (a stand-alone CM keeps its signalling VC's). Calls close from either
// end, and a multipoint call with two parties links a root to more than
// one leaf, in both topologies and every mode.
func TestCallsLeaveNothingBehind(t *testing.T) {
	for _, split := range []bool{false, true} {
		for _, mode := range []Mode{Immediate, Pend, PendEarly} {
			t.Run(fmt.Sprintf("split=%v/%v", split, mode), func(t *testing.T) {
				m := ndis.New(ndis.Options{Name: t.Name(), OnViolation: func(v ndis.Violation) { t.Errorf("violation: %v", v) }})
				fab := NewFabric()
				var cm *core
				var a *ndis.Adapter
				keep := 0 // ports that stay listed
				if split {
					mp, st := NewMiniport(m, "miniport", fab)
					if st != ndis.StatusSuccess {
						t.Fatal(st)
					}
					mp.SetMode(mode)
					fab.Run()
					d, st := NewCM(m, "cm", mp.Adapter(), fab)
					if st != ndis.StatusSuccess {
						t.Fatal(st)
					}
					d.SetMode(mode)
					cm, a, keep = d.core, mp.Adapter(), 1
				} else {
					d, st := NewMCM(m, "mcm", fab)
					if st != ndis.StatusSuccess {
						t.Fatal(st)
					}
					d.SetMode(mode)
					cm, a = d.core, d.Adapter()
				}
				fab.Run()
				var clients [3]*Client
				for i := range clients {
					c, st := NewClient(m, fmt.Sprint("client", i), a, fab)
					if st != ndis.StatusSuccess {
						t.Fatal(st)
					}
					c.SetMode(mode)
					clients[i] = c
				}
				fab.Run()
				caller, callee, third := clients[0], clients[1], clients[2]
				callee.RegisterSap(callee.Af(), "one")
				third.RegisterSap(third.Af(), "two")
				fab.Run()
				one := CallParams("one", ndis.Flowspec{TokenRate: 1000}, ndis.Flowspec{TokenRate: 1000})
				two := CallParams("two", ndis.Flowspec{TokenRate: 1000}, ndis.Flowspec{TokenRate: 1000})
				made := func(v *ClientVc) {
					t.Helper()
					var r Result
					caller.Locked(func() { r = v.Make })
					if r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
						t.Fatalf("MakeCall: %v", r)
					}
				}

				for _, callerCloses := range []bool{true, false} {
					v, _ := caller.CreateVc(caller.Af())
					caller.MakeCall(v, one, false)
					fab.Run()
					made(v)
					if callerCloses {
						caller.CloseCall(v)
					} else {
						callee.CloseCall(callee.LastIncoming()) // the caller closes in turn
					}
					fab.Run()
					if st := caller.DeleteVc(v); st != ndis.StatusSuccess {
						t.Fatalf("DeleteVc: %v", st)
					}
					fab.Run()
				}

				v, _ := caller.CreateVc(caller.Af())
				caller.MakeCall(v, one, true)
				fab.Run()
				made(v)
				p, _ := caller.AddParty(v, two)
				fab.Run()
				var added Result
				caller.Locked(func() { added = p.Add })
				if added.Status != ndis.StatusSuccess {
					t.Fatalf("AddParty: %v", added)
				}
				caller.closeWhenReady(v) // drops a party, then closes
				fab.Run()
				if st := caller.DeleteVc(v); st != ndis.StatusSuccess {
					t.Fatalf("DeleteVc: %v", st)
				}
				fab.Run()

				fab.mu.Lock()
				ports, listed := len(fab.ports), cm.vcs.n
				fab.mu.Unlock()
				if ports != keep || listed != 0 {
					t.Fatalf("%d ports in the directory (want %d), %d VCs listed", ports, keep, listed)
				}
				if s := m.Snapshot(); len(s.Vcs) != keep {
					t.Fatalf("VCs left:\n%s", s)
				}
			})
		}
	}
}

// A port set keeps its links in order and removes every link to a port.
func TestPortSetRemove(t *testing.T) {
	ps := make([]*port, 4)
	for i := range ps {
		ps[i] = &port{vci: uint32(i + 1)}
	}
	var s portSet
	for _, i := range []int{0, 1, 2, 1, 3} {
		s.add(ps[i])
	}
	got := func() (out []uint32) {
		s.each(func(p *port) { out = append(out, p.vci) })
		return out
	}
	s.remove(ps[1])
	if g := fmt.Sprint(got()); g != "[1 3 4]" {
		t.Fatalf("after removing 2: %s", g)
	}
	s.remove(ps[0])
	if g := fmt.Sprint(got()); g != "[3 4]" {
		t.Fatalf("after removing 1: %s", g)
	}
	s.remove(ps[2])
	s.remove(ps[3])
	if s.first != nil || len(s.rest()) != 0 {
		t.Fatalf("not empty: %v", got())
	}
}

// Ports made on demand (a miniport's, or a test's, by VCI) leave the
// directory once nothing uses them.
func TestFabricForgetsIdlePorts(t *testing.T) {
	f := NewFabric()
	f.attach(1, endFunc(func([]byte) {}))
	f.connect(1, 2)
	f.connect(2, 1)
	f.disconnect(1)
	f.detach(1)
	if n := len(f.ports); n != 0 {
		t.Fatalf("%d ports left", n)
	}
}
