// Package ndistest builds test topologies of the in-memory drivers around a
// mediator in strict mode: every contract violation fails the test unless
// the test declared it expected.
package ndistest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// Topology names the two ways call management is wired (spec §1.2).
type Topology string

// The two topologies.
const (
	MCM   Topology = "mcm"   // clients on a miniport call manager
	Split Topology = "split" // clients and a stand-alone CM on a CoNDIS miniport
)

// Topologies lists both.
var Topologies = []Topology{MCM, Split}

// Modes lists every completion mode the drivers support.
var Modes = []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly}

// Net is a mediator with a call manager and two clients, caller and callee,
// on one adapter.
type Net struct {
	T        testing.TB
	M        *ndis.Mediator
	Fab      *memdrv.Fabric
	Topology Topology
	Adapter  *ndis.Adapter
	MCM      *memdrv.MCM      // MCM topology
	CM       *memdrv.CM       // split topology
	Miniport *memdrv.Miniport // split topology
	Caller   *memdrv.Client
	Callee   *memdrv.Client
	Third    *memdrv.Client

	mu       sync.Mutex
	tolerate bool
	expected map[string]int
	seen     []ndis.Violation
	events   []ndis.Event
}

// New builds a topology with every driver in mode. Violations not declared
// with Expect fail the test; at cleanup the mediator is audited.
func New(t testing.TB, topo Topology, mode memdrv.Mode) *Net {
	t.Helper()
	n := &Net{T: t, Topology: topo, Fab: memdrv.NewFabric(), expected: map[string]int{}}
	n.M = ndis.New(ndis.Options{Name: t.Name(), OnViolation: n.onViolation, Trace: n.onEvent})
	switch topo {
	case MCM:
		d, st := memdrv.NewMCM(n.M, "mcm", n.Fab)
		must(t, st, "NewMCM")
		d.SetMode(mode)
		n.MCM, n.Adapter = d, d.Adapter()
	case Split:
		mp, st := memdrv.NewMiniport(n.M, "miniport", n.Fab)
		must(t, st, "NewMiniport")
		mp.SetMode(mode)
		n.Miniport, n.Adapter = mp, mp.Adapter()
		n.Run()
		cm, st := memdrv.NewCM(n.M, "cm", n.Adapter, n.Fab)
		must(t, st, "NewCM")
		cm.SetMode(mode)
		n.CM = cm
	}
	n.Run()
	var st ndis.Status
	n.Caller, st = memdrv.NewClient(n.M, "caller", n.Adapter, n.Fab)
	must(t, st, "NewClient caller")
	n.Callee, st = memdrv.NewClient(n.M, "callee", n.Adapter, n.Fab)
	must(t, st, "NewClient callee")
	n.Third, st = memdrv.NewClient(n.M, "third", n.Adapter, n.Fab)
	must(t, st, "NewClient third")
	for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
		c.SetMode(mode)
	}
	n.Run()
	return n
}

func must(t testing.TB, st ndis.Status, what string) {
	t.Helper()
	if st != ndis.StatusSuccess {
		t.Fatalf("%s: %v", what, st)
	}
}

func (n *Net) onViolation(v ndis.Violation) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = append(n.seen, v)
	if n.expected[v.Rule] > 0 {
		n.expected[v.Rule]--
		return
	}
	if n.tolerate {
		return
	}
	n.T.Errorf("unexpected contract violation: %v", v)
}

func (n *Net) onEvent(e ndis.Event) {
	n.mu.Lock()
	n.events = append(n.events, e)
	n.mu.Unlock()
}

// Mark forgets the trace so far; Upcalls and Events then report only what
// happens after it.
func (n *Net) Mark() {
	n.mu.Lock()
	n.events = n.events[:0]
	n.mu.Unlock()
}

// Events returns the trace since the last Mark.
func (n *Net) Events() []ndis.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ndis.Event(nil), n.events...)
}

// Upcalls returns, in order, every handler the mediator invoked since the
// last Mark, as "driver.Handler" (e.g. "mcm.ProtocolCmMakeCall").
func (n *Net) Upcalls() []string {
	var out []string
	for _, e := range n.Events() {
		if e.Kind == ndis.EventUpcall {
			out = append(out, e.Driver+"."+e.Func)
		}
	}
	return out
}

// InOrder reports whether want appears in got as a subsequence.
func InOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// Tolerate turns strict mode off (on) for tests that provoke many refusals
// and check Seen themselves.
func (n *Net) Tolerate(on bool) {
	n.mu.Lock()
	n.tolerate = on
	n.mu.Unlock()
}

// Expect declares that the next violation of rule is part of the test.
func (n *Net) Expect(rule string) {
	n.mu.Lock()
	n.expected[rule]++
	n.mu.Unlock()
}

// Seen returns every violation reported so far.
func (n *Net) Seen() []ndis.Violation {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ndis.Violation(nil), n.seen...)
}

// SawRule reports whether a violation of rule was reported.
func (n *Net) SawRule(rule string) bool {
	for _, v := range n.Seen() {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// CheckExpected fails the test if a declared violation did not happen.
func (n *Net) CheckExpected() {
	n.T.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for r, c := range n.expected {
		if c > 0 {
			n.T.Errorf("expected violation %s did not happen", r)
		}
	}
}

// Run drains the fabric's loop.
func (n *Net) Run() { n.Fab.Run() }

// Params builds call parameters for service with a default flowspec.
func Params(service string) *ndis.CallParameters {
	fs := ndis.Flowspec{TokenRate: 125000, TokenBucketSize: 9188, PeakBandwidth: 250000,
		Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified,
		ServiceType: ndis.ServiceGuaranteed, MaxSduSize: 9180, MinimumPolicedSize: 64}
	return memdrv.CallParams(service, fs, fs)
}

// Ready opens the AFs (done by the clients on notification) and registers
// service on the callee, and checks both succeeded.
func (n *Net) Ready(service string) (*memdrv.ClientAf, *memdrv.ClientAf, *memdrv.ClientSap) {
	n.T.Helper()
	n.Run()
	ca, ea := n.Caller.Af(), n.Callee.Af()
	if ca == nil || ea == nil || ca.Open.Status != ndis.StatusSuccess || ea.Open.Status != ndis.StatusSuccess {
		n.T.Fatalf("AF opens did not succeed: caller %+v callee %+v", ca, ea)
	}
	s := n.Callee.RegisterSap(ea, service)
	n.Run()
	if s.Register.Status != ndis.StatusSuccess || !s.Register.ExactlyOnce() {
		n.T.Fatalf("register SAP: %v", s.Register)
	}
	return ca, ea, s
}

// Teardown closes every AF through the call manager's notify-close cascade
// (spec §4.14), unbinds everything and checks that the mediator is empty.
func (n *Net) Teardown() {
	n.T.Helper()
	n.Run()
	switch n.Topology {
	case MCM:
		n.MCM.NotifyCloseAll()
	case Split:
		n.CM.NotifyCloseAll()
	}
	n.Run()
	for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
		if st := c.Unbind(); st != ndis.StatusSuccess {
			n.T.Errorf("unbind %s: %v\n%s", c.Name, st, n.M.Snapshot())
		}
	}
	if n.CM != nil {
		for i := 0; i < 10; i++ {
			st := n.CM.Unbind()
			n.Run()
			if st != ndis.StatusPending {
				if st != ndis.StatusSuccess {
					n.T.Errorf("CM unbind: %v", st)
				}
				break
			}
		}
	}
	if st := n.Adapter.RemoveAdapter(); st != ndis.StatusSuccess {
		n.T.Errorf("remove adapter: %v", st)
	}
	s := n.M.Snapshot()
	if !s.Empty() || len(s.Adapters) != 0 {
		n.T.Errorf("mediator not empty after teardown:\n%s", s)
	}
	if v := n.M.Audit(); len(v) > 0 {
		n.T.Errorf("audit: %v", v)
	}
	n.CheckExpected()
}

// Dump renders the snapshot and every client log, for failure messages.
func (n *Net) Dump() string {
	var b strings.Builder
	b.WriteString(n.M.Snapshot().String())
	for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
		fmt.Fprintf(&b, "%s: %v\n", c.Name, c.Log())
	}
	return b.String()
}
