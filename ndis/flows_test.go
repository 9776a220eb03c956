package ndis_test

// One test per message-sequence flow of spec §4 (4.1–4.23). Each runs over
// every topology (MCM and split) and every completion mode (Immediate, Pend,
// PendEarly) and asserts the statuses returned and delivered, that every
// pendable request finished exactly once (R-GEN-3, R-GEN-4), the order of
// the handlers the mediator invoked where the spec fixes it, the mediator's
// state at key points, that the indications the flow excludes did not
// happen, and that nothing leaked (Teardown).

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// --- helpers ---

// roles names the drivers of a topology as the trace shows them: the call
// manager ("mcm" or "cm") and the miniport ("mcm" or "miniport").
type roles struct{ cm, mp string }

func rolesOf(n *ndistest.Net) roles {
	if n.Topology == ndistest.MCM {
		return roles{cm: "mcm", mp: "mcm"}
	}
	return roles{cm: "cm", mp: "miniport"}
}

// CM names a call-manager handler, MP a miniport handler.
func (r roles) CM(handler string) string { return r.cm + "." + handler }
func (r roles) MP(handler string) string { return r.mp + "." + handler }

// forEach runs f as a subtest for every topology and mode.
func forEach(t *testing.T, f func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode)) {
	for _, topo := range ndistest.Topologies {
		for _, mode := range ndistest.Modes {
			t.Run(string(topo)+"/"+mode.String(), func(t *testing.T) { f(t, topo, mode) })
		}
	}
}

func pended(mode memdrv.Mode) bool { return mode != memdrv.Immediate }

// wantRet is what a request answered by a driver in mode returns when the
// outcome is st and known inside the handler.
func wantRet(mode memdrv.Mode, st ndis.Status) ndis.Status {
	if pended(mode) {
		return ndis.StatusPending
	}
	return st
}

// checkResult asserts how a pendable request ended: what it returned, its
// final status, and that it finished exactly once.
func checkResult(t *testing.T, what string, r memdrv.Result, returned, final ndis.Status) {
	t.Helper()
	if r.Returned != returned || r.Status != final || !r.Done || !r.ExactlyOnce() {
		t.Errorf("%s: %v; want returned %v, final %v, exactly once", what, r, returned, final)
	}
}

func setCMMode(n *ndistest.Net, m memdrv.Mode) {
	if n.MCM != nil {
		n.MCM.SetMode(m)
	} else {
		n.CM.SetMode(m)
	}
}

func setMaxTokenRate(n *ndistest.Net, rate uint32) {
	if n.MCM != nil {
		n.MCM.SetMaxTokenRate(rate)
	} else {
		n.CM.SetMaxTokenRate(rate)
	}
}

func outstandingReceives(n *ndistest.Net) int {
	if n.MCM != nil {
		return n.MCM.OutstandingReceives()
	}
	return n.Miniport.OutstandingReceives()
}

func vcInfo(n *ndistest.Net, h *ndis.Vc) (ndis.VcInfo, bool) {
	for _, v := range n.M.Snapshot().Vcs {
		if v.Handle == h.String() {
			return v, true
		}
	}
	return ndis.VcInfo{}, false
}

// mustVc returns the snapshot of a live VC.
func mustVc(t *testing.T, n *ndistest.Net, h *ndis.Vc) ndis.VcInfo {
	t.Helper()
	v, ok := vcInfo(n, h)
	if !ok {
		t.Fatalf("%v is not in the snapshot\n%s", h, n.Dump())
	}
	return v
}

// checkVc asserts the activation and call state of a live VC.
func checkVc(t *testing.T, n *ndistest.Net, h *ndis.Vc, activation, call string) ndis.VcInfo {
	t.Helper()
	v := mustVc(t, n, h)
	if v.Activation != activation || v.Call != call {
		t.Errorf("%v: %s/%s, want %s/%s\n%s", h, v.Activation, v.Call, activation, call, n.Dump())
	}
	return v
}

func gone(t *testing.T, n *ndistest.Net, h *ndis.Vc) {
	t.Helper()
	if _, ok := vcInfo(n, h); ok {
		t.Errorf("%v still in the snapshot\n%s", h, n.Dump())
	}
}

func sapInfo(n *ndistest.Net, service string) (ndis.SapInfo, bool) {
	for _, s := range n.M.Snapshot().Saps {
		if svc, _ := q2931.SapService(&s.Sap); svc == service {
			return s, true
		}
	}
	return ndis.SapInfo{}, false
}

func afInfo(n *ndistest.Net, h *ndis.Af) (ndis.AfInfo, bool) {
	for _, a := range n.M.Snapshot().Afs {
		if a.Handle == h.String() {
			return a, true
		}
	}
	return ndis.AfInfo{}, false
}

func registration(t *testing.T, n *ndistest.Net) ndis.RegistrationInfo {
	t.Helper()
	for _, a := range n.M.Snapshot().Adapters {
		if a.Name == n.Adapter.String() && len(a.Registrations) == 1 {
			return a.Registrations[0]
		}
	}
	t.Fatalf("no single AF registration on %v\n%s", n.Adapter, n.Dump())
	return ndis.RegistrationInfo{}
}

func count(list []string, s string) int {
	c := 0
	for _, x := range list {
		if x == s {
			c++
		}
	}
	return c
}

// inOrder asserts that want is a subsequence of the handlers invoked since
// the last Mark.
func inOrder(t *testing.T, n *ndistest.Net, want ...string) {
	t.Helper()
	if got := n.Upcalls(); !ndistest.InOrder(got, want) {
		t.Errorf("handlers out of order\nwant (in order) %q\ngot %q", want, got)
	}
}

// never asserts that none of the handlers was invoked since the last Mark.
func never(t *testing.T, n *ndistest.Net, handlers ...string) {
	t.Helper()
	got := n.Upcalls()
	for _, h := range handlers {
		if c := count(got, h); c > 0 {
			t.Errorf("%s invoked %d time(s), want never\ngot %q", h, c, got)
		}
	}
}

// times asserts how often a handler was invoked since the last Mark.
func times(t *testing.T, n *ndistest.Net, handler string, want int) {
	t.Helper()
	if c := count(n.Upcalls(), handler); c != want {
		t.Errorf("%s invoked %d time(s), want %d\ngot %q", handler, c, want, n.Upcalls())
	}
}

// onObject lists, since the last Mark, the events on one object as
// "kind driver.Func" ("up" for a handler invoked, "req" for a request,
// "ret" for its return).
func onObject(n *ndistest.Net, obj fmt.Stringer) []string {
	var out []string
	for _, e := range n.Events() {
		if e.Object != obj.String() {
			continue
		}
		switch e.Kind {
		case ndis.EventUpcall:
			out = append(out, "up "+e.Driver+"."+e.Func)
		case ndis.EventRequest:
			out = append(out, "req "+e.Driver+"."+e.Func)
		case ndis.EventReturn:
			out = append(out, "ret "+e.Driver+"."+e.Func)
		}
	}
	return out
}

func inOrderOn(t *testing.T, n *ndistest.Net, obj fmt.Stringer, want ...string) {
	t.Helper()
	if got := onObject(n, obj); !ndistest.InOrder(got, want) {
		t.Errorf("events on %v out of order\nwant (in order) %q\ngot %q", obj, want, got)
	}
}

// logCount counts the entries of a client's log equal to s.
func logCount(c *memdrv.Client, s string) int { return count(c.Log(), s) }

// call makes a call from c on a new VC and checks it connected.
func call(t *testing.T, n *ndistest.Net, c *memdrv.Client, a *memdrv.ClientAf, service string, multipoint bool) (*memdrv.ClientVc, *memdrv.ClientParty) {
	t.Helper()
	v, st := c.CreateVc(a)
	if st != ndis.StatusSuccess {
		t.Fatalf("create VC: %v", st)
	}
	p, _ := c.MakeCall(v, ndistest.Params(service), multipoint)
	n.Run()
	if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusSuccess {
		t.Fatalf("call to %s: %v\n%s", service, v.Make, n.Dump())
	}
	return v, p
}

// closeAndDelete closes c's call on v and deletes the VC.
func closeAndDelete(t *testing.T, n *ndistest.Net, c *memdrv.Client, v *memdrv.ClientVc) {
	t.Helper()
	c.CloseCall(v)
	n.Run()
	if !v.Close.ExactlyOnce() || v.Close.Status != ndis.StatusSuccess {
		t.Fatalf("close: %v\n%s", v.Close, n.Dump())
	}
	if st := c.DeleteVc(v); st != ndis.StatusSuccess {
		t.Fatalf("delete: %v\n%s", st, n.Dump())
	}
	n.Run()
}

// paramsRate builds call parameters for service with both token rates set.
func paramsRate(service string, rate uint32) *ndis.CallParameters {
	p := ndistest.Params(service)
	p.CallMgrParameters.Transmit.TokenRate = rate
	p.CallMgrParameters.Receive.TokenRate = rate
	return p
}

func txRate(p *ndis.CallParameters) uint32 {
	if p == nil || p.CallMgrParameters == nil {
		return 0
	}
	return p.CallMgrParameters.Transmit.TokenRate
}

// --- 4.1 ---

// TestFlow4_1_AfRegistrationOpen: clients bound after the registration are
// told once (ProtocolCoAfRegisterNotify) and open the AF; the open runs
// ProtocolCmOpenAf and completes through ProtocolClOpenAfCompleteEx only
// when it pended; a refused open leaves no AF object and hands the client a
// NULL handle (R-AF-10); the client closes its own AF (client-initiated
// variant of 4.14).
func TestFlow4_1_AfRegistrationOpen(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		notify := "AfRegisterNotify(CO_ADDRESS_FAMILY_Q2931)"
		for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
			if got := logCount(c, notify); got != 1 {
				t.Errorf("%s told %d times, want 1: %q", c.Name, got, c.Log())
			}
			a := c.Af()
			checkResult(t, c.Name+" open", a.Open, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
			if got, want := logCount(c, "OpenAfComplete(NDIS_STATUS_SUCCESS)"), map[bool]int{false: 0, true: 1}[pended(mode)]; got != want {
				t.Errorf("%s: %d ProtocolClOpenAfCompleteEx, want %d", c.Name, got, want)
			}
			ai, ok := afInfo(n, a.H)
			if !ok || ai.State != "OPEN" || ai.Client != c.Name || ai.CallManager != r.cm || len(ai.Pending) != 0 {
				t.Errorf("%s AF: %+v", c.Name, ai)
			}
		}
		if reg := registration(t, n); reg.Opens != 3 || reg.CallManager != r.cm || reg.AddressFamily != memdrv.AF || reg.Withdrawing {
			t.Errorf("registration %+v", reg)
		}

		// A client that binds later is told too, and only it.
		n.Mark()
		late, st := memdrv.NewClient(n.M, "late", n.Adapter, n.Fab)
		if st != ndis.StatusSuccess {
			t.Fatal(st)
		}
		late.SetMode(mode)
		la := late.Af()
		if la == nil {
			t.Fatalf("late client not told about the AF: %q", late.Log())
		}
		if mode == memdrv.Pend {
			if ai, _ := afInfo(n, la.H); ai.State != "OPENING" || !slices.Equal(ai.Pending, []string{"OpenAf"}) {
				t.Errorf("pended open: %+v", ai)
			}
			if la.Open.Completions != 0 {
				t.Errorf("open completed before the CM completed it: %v", la.Open)
			}
		}
		n.Run()
		checkResult(t, "late open", la.Open, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if pended(mode) {
			inOrder(t, n, "late.ProtocolCoAfRegisterNotify", r.CM("ProtocolCmOpenAf"), "late.ProtocolClOpenAfCompleteEx")
		} else {
			inOrder(t, n, "late.ProtocolCoAfRegisterNotify", r.CM("ProtocolCmOpenAf"))
			never(t, n, "late.ProtocolClOpenAfCompleteEx")
		}
		never(t, n, "caller.ProtocolCoAfRegisterNotify", "callee.ProtocolCoAfRegisterNotify",
			"third.ProtocolCoAfRegisterNotify", r.CM("ProtocolCoAfRegisterNotify"))
		if ai, ok := afInfo(n, la.H); !ok || ai.State != "OPEN" || ai.Client != "late" {
			t.Errorf("late AF: %+v", ai)
		}
		if reg := registration(t, n); reg.Opens != 4 {
			t.Errorf("opens %d, want 4", reg.Opens)
		}

		// Failure variant: ProtocolCmOpenAf fails with RESOURCES.
		refuseOpenAf(n, ndis.StatusResources)
		n.Mark()
		bad := late.OpenAf()
		n.Run()
		refuseOpenAf(n, ndis.StatusSuccess)
		checkResult(t, "refused open", bad.Open, wantRet(mode, ndis.StatusResources), ndis.StatusResources)
		if mode == memdrv.Pend && bad.H == nil {
			t.Errorf("a pended open returned no handle")
		}
		if pended(mode) && bad.H != nil {
			// The handle returned with PENDING died with the failure: NDIS
			// freed the open before reporting it (R-AF-10). (PendEarly
			// returns no handle: the failure was known before the return.)
			n.Expect("R-AF-10")
			if st := late.Binding().ClCloseAddressFamily(bad.H); st != ndis.StatusFailure {
				t.Errorf("close of the refused open: %v, want FAILURE", st)
			}
		} else if bad.H != nil {
			t.Errorf("refused open returned handle %v", bad.H)
		}
		if pended(mode) {
			inOrder(t, n, r.CM("ProtocolCmOpenAf"), "late.ProtocolClOpenAfCompleteEx")
			if got := logCount(late, "OpenAfComplete(NDIS_STATUS_RESOURCES)"); got != 1 {
				t.Errorf("failure completions %d, want 1: %q", got, late.Log())
			}
		} else {
			never(t, n, "late.ProtocolClOpenAfCompleteEx")
		}
		s := n.M.Snapshot()
		lateAfs := 0
		for _, a := range s.Afs {
			if a.Client == "late" {
				lateAfs++
			}
		}
		if lateAfs != 1 || registration(t, n).Opens != 4 {
			t.Errorf("refused open left state behind (late AFs %d)\n%s", lateAfs, s)
		}

		// Client-initiated close of the AF, then unbind.
		n.Mark()
		late.CloseAf(la)
		n.Run()
		checkResult(t, "late close AF", la.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		inOrder(t, n, r.CM("ProtocolCmCloseAf"))
		if pended(mode) {
			times(t, n, "late.ProtocolClCloseAfComplete", 1)
		} else {
			never(t, n, "late.ProtocolClCloseAfComplete")
		}
		if _, ok := afInfo(n, la.H); ok {
			t.Errorf("closed AF still present\n%s", n.Dump())
		}
		if st := late.Unbind(); st != ndis.StatusSuccess {
			t.Fatalf("unbind late: %v", st)
		}
		n.Teardown()
	})

	// Split only: a client bound before the call manager registers is told
	// once the CM's ProtocolBindAdapterEx has returned (spec §4.1 step 3).
	for _, mode := range ndistest.Modes {
		t.Run("split/bound-before-registration/"+mode.String(), func(t *testing.T) {
			var events []ndis.Event
			m := ndis.New(ndis.Options{Name: t.Name(),
				OnViolation: func(v ndis.Violation) { t.Errorf("unexpected violation: %v", v) },
				Trace:       func(e ndis.Event) { events = append(events, e) }})
			fab := memdrv.NewFabric()
			mp, st := memdrv.NewMiniport(m, "miniport", fab)
			if st != ndis.StatusSuccess {
				t.Fatal(st)
			}
			mp.SetMode(mode)
			early, st := memdrv.NewClient(m, "early", mp.Adapter(), fab)
			if st != ndis.StatusSuccess {
				t.Fatal(st)
			}
			early.SetMode(mode)
			if len(early.Log()) != 0 || early.Af() != nil {
				t.Fatalf("told before any registration: %q", early.Log())
			}
			cm, st := memdrv.NewCM(m, "cm", mp.Adapter(), fab)
			if st != ndis.StatusSuccess {
				t.Fatal(st)
			}
			cm.SetMode(mode)
			fab.Run()
			idx := func(kind ndis.EventKind, driver, fn string) int {
				for i, e := range events {
					if e.Kind == kind && e.Driver == driver && e.Func == fn {
						return i
					}
				}
				return -1
			}
			reg := idx(ndis.EventReturn, "cm", "NdisCmRegisterAddressFamilyEx")
			sig := idx(ndis.EventReturn, "cm", "NdisCoCreateVc") // the signalling VC, created after registering
			note := idx(ndis.EventUpcall, "early", "ProtocolCoAfRegisterNotify")
			if reg < 0 || sig < 0 || note < 0 || !(reg < sig && sig < note) {
				t.Errorf("register %d, signalling VC %d, notify %d: the notify must follow the CM's bind", reg, sig, note)
			}
			if got := count(early.Log(), "AfRegisterNotify(CO_ADDRESS_FAMILY_Q2931)"); got != 1 {
				t.Errorf("told %d times", got)
			}
			a := early.Af()
			if a == nil {
				t.Fatal("no AF opened")
			}
			// The CM opens in Immediate mode: SetMode can only follow NewCM.
			checkResult(t, "open", a.Open, ndis.StatusSuccess, ndis.StatusSuccess)
			cm.NotifyCloseAll()
			fab.Run()
			if st := early.Unbind(); st != ndis.StatusSuccess {
				t.Errorf("unbind: %v\n%s", st, m.Snapshot())
			}
			for i := 0; i < 10; i++ {
				st := cm.Unbind()
				fab.Run()
				if st != ndis.StatusPending {
					if st != ndis.StatusSuccess {
						t.Errorf("CM unbind: %v", st)
					}
					break
				}
			}
			if st := mp.Adapter().RemoveAdapter(); st != ndis.StatusSuccess {
				t.Errorf("remove adapter: %v", st)
			}
			if s := m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
				t.Errorf("not empty:\n%s", s)
			}
			if v := m.Audit(); len(v) != 0 {
				t.Errorf("audit: %v", v)
			}
		})
	}
}

func refuseOpenAf(n *ndistest.Net, st ndis.Status) {
	if n.MCM != nil {
		n.MCM.RefuseOpenAf(st)
	} else {
		n.CM.RefuseOpenAf(st)
	}
}

// --- 4.2 ---

// TestFlow4_2_SapRegistration: registration through ProtocolCmRegisterSap,
// completing through ProtocolClRegisterSapComplete only when pended; a
// service already registered by another client fails with INVALID_DATA and
// leaves no SAP (R-SAP-2, R-SAP-3); deregistration always returns PENDING
// and completes exactly once (spec §9.10); calls already received are not
// affected (R-SAP-9) but new ones fail; a redundant deregistration fails
// (R-SAP-6). In Pend mode an incoming call is dispatched while the SAP's
// registration is still pending (R-SAP-4).
func TestFlow4_2_SapRegistration(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, ea, ta := n.Caller.Af(), n.Callee.Af(), n.Third.Af()

		n.Mark()
		s := n.Callee.RegisterSap(ea, "svc")
		if mode == memdrv.Pend {
			if si, _ := sapInfo(n, "svc"); si.State != "REGISTERING" || !slices.Equal(si.Pending, []string{"RegisterSap"}) {
				t.Errorf("pended registration: %+v", si)
			}
		}
		n.Run()
		checkResult(t, "register", s.Register, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if si, ok := sapInfo(n, "svc"); !ok || si.State != "REGISTERED" || si.Client != "callee" || len(si.Pending) != 0 || s.H == nil {
			t.Errorf("SAP: %+v handle %v", si, s.H)
		}
		inOrder(t, n, r.CM("ProtocolCmRegisterSap"))
		times(t, n, "callee.ProtocolClRegisterSapComplete", map[bool]int{false: 0, true: 1}[pended(mode)])

		// The same service by another client.
		n.Mark()
		dup := n.Third.RegisterSap(ta, "svc")
		n.Run()
		checkResult(t, "duplicate register", dup.Register, wantRet(mode, ndis.StatusInvalidData), ndis.StatusInvalidData)
		if mode == memdrv.Pend && dup.H == nil {
			t.Errorf("a pended registration returned no handle")
		}
		if pended(mode) && dup.H != nil {
			// The handle returned with PENDING died with the failure (R-SAP-3).
			n.Expect("R-SAP-6")
			if st := n.Third.Binding().ClDeregisterSap(dup.H); st != ndis.StatusFailure {
				t.Errorf("deregister of the refused SAP: %v, want FAILURE", st)
			}
		} else if dup.H != nil {
			t.Errorf("failed registration returned handle %v", dup.H)
		}
		times(t, n, "third.ProtocolClRegisterSapComplete", map[bool]int{false: 0, true: 1}[pended(mode)])
		if saps := n.M.Snapshot().Saps; len(saps) != 1 || saps[0].Client != "callee" {
			t.Errorf("SAPs after the refused duplicate: %+v", saps)
		}

		// A call received on the SAP survives its deregistration.
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		n.Mark()
		if st := n.Callee.DeregisterSap(s); st != ndis.StatusPending {
			t.Errorf("deregister returned %v, want PENDING", st)
		}
		if mode == memdrv.Pend {
			if si, _ := sapInfo(n, "svc"); si.State != "DEREGISTERING" || !slices.Equal(si.Pending, []string{"DeregisterSap"}) {
				t.Errorf("pended deregistration: %+v", si)
			}
			if s.Deregister.Completions != 0 {
				t.Errorf("deregistration completed early: %v", s.Deregister)
			}
		}
		n.Run()
		checkResult(t, "deregister", s.Deregister, ndis.StatusPending, ndis.StatusSuccess)
		inOrder(t, n, r.CM("ProtocolCmDeregisterSap"), "callee.ProtocolClDeregisterSapComplete")
		if _, ok := sapInfo(n, "svc"); ok {
			t.Errorf("SAP still present\n%s", n.Dump())
		}
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		n.Caller.Send(v, []byte("still up"))
		n.Run()
		if rx := in.RxData(); len(rx) != 1 || string(rx[0]) != "still up" {
			t.Errorf("callee received %q after the deregistration", rx)
		}

		// A redundant deregistration fails and completes nothing.
		n.Expect("R-SAP-6")
		if st := n.Callee.Binding().ClDeregisterSap(s.H); st != ndis.StatusFailure {
			t.Errorf("second deregister: %v, want FAILURE", st)
		}
		if got := logCount(n.Callee, "DeregisterSapComplete(svc, NDIS_STATUS_SUCCESS)"); got != 1 || s.Deregister.Completions != 1 {
			t.Errorf("deregistration completions %d/%d, want 1", got, s.Deregister.Completions)
		}

		// New calls to the service find no SAP.
		v2, _ := n.Caller.CreateVc(ca)
		n.Caller.MakeCall(v2, ndistest.Params("svc"), false)
		n.Run()
		checkResult(t, "call after deregistration", v2.Make, wantRet(mode, ndis.StatusInvalidSap), ndis.StatusInvalidSap)
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Errorf("delete: %v", st)
		}
		closeAndDelete(t, n, n.Caller, v)

		if mode == memdrv.Pend {
			// R-SAP-4: the CM offers a call on a SAP whose registration
			// has not completed. The miniport activates at once so the
			// offer is not queued behind the registration's completion.
			if n.Miniport != nil {
				n.Miniport.SetMode(memdrv.Immediate)
			}
			var stateAtOffer string
			n.Callee.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status {
				si, _ := sapInfo(n, "early")
				stateAtOffer = si.State
				return ndis.StatusSuccess
			}
			se := n.Callee.RegisterSap(ea, "early")
			if se.Register.Returned != ndis.StatusPending {
				t.Fatalf("register: %v", se.Register)
			}
			n.Mark()
			ve, _ := n.Caller.CreateVc(ca)
			n.Caller.MakeCall(ve, ndistest.Params("early"), false)
			if stateAtOffer != "REGISTERING" {
				t.Errorf("SAP was %q when the call was offered, want REGISTERING", stateAtOffer)
			}
			n.Run()
			inOrder(t, n, "callee.ProtocolClIncomingCall", "callee.ProtocolClRegisterSapComplete", "callee.ProtocolClCallConnected")
			checkResult(t, "register early", se.Register, ndis.StatusPending, ndis.StatusSuccess)
			checkResult(t, "call early", ve.Make, ndis.StatusPending, ndis.StatusSuccess)
			if in := n.Callee.LastIncoming(); in.Connected != 1 {
				t.Errorf("early call not connected\n%s", n.Dump())
			}
			n.Callee.Accept = nil
			if n.Miniport != nil {
				n.Miniport.SetMode(mode)
			}
			closeAndDelete(t, n, n.Caller, ve)
		}
		n.Teardown()
	})
}

// --- 4.3 / 4.4 ---

// TestFlow4_3_OutgoingCallP2P: a point-to-point call; the CM completes at
// once in Immediate mode (no ProtocolClMakeCallComplete, R-GEN-3) and pends
// otherwise (exactly one). The far end is offered the call on a VC the CM
// created and activated; the caller's VC is active and connected before the
// call completes (R-CALL-4). Failure variants: an unregistered service
// (INVALID_SAP) and a QoS above the CM's limit (CELLRATE_NOT_AVAILABLE),
// after which the client deletes its VC.
func TestFlow4_3_OutgoingCallP2P(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")

		n.Mark()
		v, st := n.Caller.CreateVc(ca)
		if st != ndis.StatusSuccess {
			t.Fatal(st)
		}
		if topo == ndistest.Split {
			inOrder(t, n, r.MP("MiniportCoCreateVc"), r.CM("ProtocolCoCreateVc"))
		} else {
			inOrder(t, n, r.CM("ProtocolCoCreateVc"))
			never(t, n, "mcm.MiniportCoCreateVc")
		}
		vi := checkVc(t, n, v.H, "INACTIVE", "IDLE")
		if vi.Kind != "outgoing" || vi.Creator != "caller" || vi.CallManager != r.cm {
			t.Errorf("VC %+v", vi)
		}

		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		if mode == memdrv.Pend {
			vi := checkVc(t, n, v.H, "INACTIVE", "OUT_SETUP")
			if !slices.Contains(vi.Pending, "MakeCall") {
				t.Errorf("pending %v", vi.Pending)
			}
		}
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		in := n.Callee.LastIncoming()
		if in == nil || in.Connected != 1 || in.Offered != 1 {
			t.Fatalf("callee: %+v\n%s", in, n.Dump())
		}
		want := []string{r.CM("ProtocolCmMakeCall"), "callee.ProtocolCoCreateVc", "callee.ProtocolClIncomingCall", "callee.ProtocolClCallConnected"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClMakeCallComplete")
		} else {
			never(t, n, "caller.ProtocolClMakeCallComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "caller.ProtocolClCallConnected", "caller.ProtocolClIncomingCloseCall")
		// The caller's VC is activated before the call is reported up.
		done := "ret caller.NdisClMakeCall"
		if pended(mode) {
			done = "up caller.ProtocolClMakeCallComplete"
		}
		inOrderOn(t, n, v.H, "req caller.NdisClMakeCall", "up "+r.CM("ProtocolCmMakeCall"), activateReq(r), done)
		vi = checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		if vi.Multipoint || len(vi.Parties) != 0 || len(vi.Pending) != 0 || vi.Params == nil {
			t.Errorf("caller VC %+v", vi)
		}
		if _, ok := memdrv.VCIOf(vi.Params); !ok {
			t.Errorf("activation parameters carry no VCI: %+v", vi.Params)
		}
		ii := checkVc(t, n, in.H, "ACTIVE", "CONNECTED")
		if ii.Creator != r.cm || ii.Client != "callee" {
			t.Errorf("callee VC %+v", ii)
		}
		if pended(mode) && (v.Params == nil || txRate(v.Params) != 125000) {
			t.Errorf("completion parameters %+v", v.Params)
		}
		n.Caller.Send(v, []byte("hello"))
		n.Run()
		if rx := in.RxData(); len(rx) != 1 || string(rx[0]) != "hello" {
			t.Errorf("rx %q", rx)
		}
		closeAndDelete(t, n, n.Caller, v)

		// Failure: no SAP matches the called service.
		v2, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v2, ndistest.Params("nobody"), false)
		n.Run()
		checkResult(t, "call to nobody", v2.Make, wantRet(mode, ndis.StatusInvalidSap), ndis.StatusInvalidSap)
		never(t, n, "callee.ProtocolClIncomingCall", "callee.ProtocolCoCreateVc", "third.ProtocolClIncomingCall",
			"caller.ProtocolClIncomingCloseCall")
		times(t, n, "caller.ProtocolClMakeCallComplete", map[bool]int{false: 0, true: 1}[pended(mode)])
		checkVc(t, n, v2.H, "INACTIVE", "IDLE")

		// Failure: the QoS exceeds what the CM can carry. The CM refuses
		// inside ProtocolCmMakeCall, whatever its mode.
		setMaxTokenRate(n, 100000)
		n.Mark()
		n.Caller.MakeCall(v2, ndistest.Params("svc"), false)
		n.Run()
		setMaxTokenRate(n, 0)
		checkResult(t, "call above the cell rate", v2.Make, ndis.StatusCellrateNotAvailable, ndis.StatusCellrateNotAvailable)
		never(t, n, "caller.ProtocolClMakeCallComplete", "callee.ProtocolClIncomingCall")
		checkVc(t, n, v2.H, "INACTIVE", "IDLE")

		// The client deletes the VC after the failure.
		n.Mark()
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Fatalf("delete after failure: %v", st)
		}
		if topo == ndistest.Split {
			inOrder(t, n, r.CM("ProtocolCoDeleteVc"), r.MP("MiniportCoDeleteVc"))
		} else {
			inOrder(t, n, r.CM("ProtocolCoDeleteVc"))
		}
		gone(t, n, v2.H)
		n.Teardown()
	})
}

// activateReq is the activation request a call manager makes in the trace.
func activateReq(r roles) string {
	if r.cm == "mcm" {
		return "req mcm.NdisMCmActivateVc"
	}
	return "req cm.NdisCmActivateVc"
}

func deactivateReq(r roles) string {
	if r.cm == "mcm" {
		return "req mcm.NdisMCmDeactivateVc"
	}
	return "req cm.NdisCmDeactivateVc"
}

// TestFlow4_4_OutgoingCallMultipoint: a point-to-multipoint call creates the
// initial party (R-CALL-3); the party handle is connected once the call
// completes and its completion hands it back. Failure: the party dies with
// the call (R-CALL-7), the handle is refused afterwards, the VC is left
// inactive and idle and the client deletes it.
func TestFlow4_4_OutgoingCallMultipoint(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")

		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		p, st := n.Caller.MakeCall(v, ndistest.Params("svc"), true)
		if st != wantRet(mode, ndis.StatusSuccess) || p == nil || p.H == nil {
			t.Fatalf("make call: %v party %+v", st, p)
		}
		if mode == memdrv.Pend {
			vi := checkVc(t, n, v.H, "INACTIVE", "OUT_SETUP")
			if !vi.Multipoint || len(vi.Parties) != 1 || vi.Parties[0].State != "ADDING" {
				t.Errorf("pended multipoint call %+v", vi)
			}
		}
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{r.CM("ProtocolCmMakeCall"), "callee.ProtocolClIncomingCall", "callee.ProtocolClCallConnected"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClMakeCallComplete")
		}
		inOrder(t, n, want...)
		if topo == ndistest.Split && pended(mode) {
			// Both the callee's and the caller's activation pended in the
			// miniport and completed before the call did.
			inOrder(t, n, "cm.ProtocolCmActivateVcComplete", "cm.ProtocolCmActivateVcComplete", "caller.ProtocolClMakeCallComplete")
		}
		vi := checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		if !vi.Multipoint || len(vi.Parties) != 1 || vi.Parties[0].State != "CONNECTED" || vi.Parties[0].Handle != p.H.String() {
			t.Errorf("multipoint VC %+v (party %v)", vi, p.H)
		}
		in := n.Callee.LastIncoming()
		n.Caller.Send(v, []byte("to leaf"))
		n.Run()
		if rx := in.RxData(); len(rx) != 1 || string(rx[0]) != "to leaf" {
			t.Errorf("leaf rx %q", rx)
		}
		closeAndDelete(t, n, n.Caller, v)

		// Failure: the initial party dies with the call.
		v2, _ := n.Caller.CreateVc(ca)
		n.Mark()
		p2, _ := n.Caller.MakeCall(v2, ndistest.Params("nobody"), true)
		n.Run()
		checkResult(t, "multipoint call to nobody", v2.Make, wantRet(mode, ndis.StatusInvalidSap), ndis.StatusInvalidSap)
		vi = checkVc(t, n, v2.H, "INACTIVE", "IDLE")
		if vi.Multipoint || len(vi.Parties) != 0 {
			t.Errorf("failed call left parties: %+v", vi)
		}
		never(t, n, "callee.ProtocolClIncomingCall", "caller.ProtocolClIncomingCloseCall")
		if pended(mode) {
			// The handle returned with PENDING is dead after the failure.
			if p2.H == nil {
				t.Fatalf("no party handle returned with PENDING")
			}
			n.Expect("R-PTY-9")
			if st := n.Caller.Binding().ClDropParty(p2.H, nil); st != ndis.StatusFailure {
				t.Errorf("drop of a dead party: %v", st)
			}
		} else if p2.H != nil {
			t.Errorf("a failed call returned party handle %v", p2.H)
		}
		n.Mark()
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Fatalf("delete: %v", st)
		}
		times(t, n, r.CM("ProtocolCoDeleteVc"), 1)
		gone(t, n, v2.H)
		n.Teardown()
	})
}

// --- 4.5 – 4.9: incoming calls ---

func incomingKind(n *ndistest.Net) string {
	if n.Topology == ndistest.MCM {
		return "incoming(MCM)"
	}
	return "incoming"
}

func dispatchReq(r roles, what string) string {
	if r.cm == "mcm" {
		return "req mcm.NdisMCm" + what
	}
	return "req cm.NdisCm" + what
}

func dispatchCallConnected(n *ndistest.Net, vc *ndis.Vc) ndis.Status {
	if n.MCM != nil {
		return n.MCM.Adapter().MCmDispatchCallConnected(vc)
	}
	return n.CM.Binding().CmDispatchCallConnected(vc)
}

// TestFlow4_5_IncomingCallAccepted: the callee answers ProtocolClIncomingCall
// with SUCCESS at once, so the CM's ProtocolCmIncomingCallComplete is never
// called (R-GEN-3). The call is offered on a VC the CM created and already
// activated (spec §9.4 usual order), then connected; data flows both ways;
// when the caller closes, the CM deletes the VC it created.
func TestFlow4_5_IncomingCallAccepted(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		n.Callee.SetMode(memdrv.Immediate)
		ca, _, _ := n.Ready("svc")
		var atOffer ndis.VcInfo
		n.Callee.Accept = func(cv *memdrv.ClientVc, _ *ndis.CallParameters) ndis.Status {
			atOffer = mustVc(t, n, cv.H)
			return ndis.StatusSuccess
		}
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		in := n.Callee.LastIncoming()
		if in == nil {
			t.Fatalf("no incoming call\n%s", n.Dump())
		}
		if atOffer.Activation != "ACTIVE" || atOffer.Call != "OFFERED" || atOffer.Creator != r.cm ||
			atOffer.Kind != incomingKind(n) || atOffer.Client != "callee" {
			t.Errorf("VC when offered: %+v", atOffer)
		}
		checkResult(t, "answer", in.Answer, ndis.StatusSuccess, ndis.StatusSuccess)
		if !in.Incoming || in.Offered != 1 || in.Connected != 1 || in.Params == nil || txRate(in.Params) != 125000 {
			t.Errorf("callee VC: %+v", in)
		}
		want := []string{r.CM("ProtocolCmMakeCall")}
		if topo == ndistest.Split {
			want = append(want, r.MP("MiniportCoCreateVc"))
		}
		want = append(want, "callee.ProtocolCoCreateVc")
		if topo == ndistest.Split {
			want = append(want, r.MP("MiniportCoActivateVc"))
		}
		want = append(want, "callee.ProtocolClIncomingCall", "callee.ProtocolClCallConnected")
		inOrder(t, n, want...)
		never(t, n, r.CM("ProtocolCmIncomingCallComplete"), "callee.ProtocolClIncomingCloseCall")
		inOrderOn(t, n, in.H, activateReq(r), "up callee.ProtocolClIncomingCall", dispatchReq(r, "DispatchCallConnected"), "up callee.ProtocolClCallConnected")
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")

		n.Caller.Send(v, []byte("ping"))
		n.Callee.Send(in, []byte("pong"))
		n.Run()
		if rx := in.RxData(); len(rx) != 1 || string(rx[0]) != "ping" {
			t.Errorf("callee rx %q", rx)
		}
		if rx := v.RxData(); len(rx) != 1 || string(rx[0]) != "pong" {
			t.Errorf("caller rx %q", rx)
		}
		n.Mark()
		closeAndDelete(t, n, n.Caller, v)
		if in.CloseIndicated != 1 || in.CloseStatus != ndis.StatusSuccess || !in.Deleted {
			t.Errorf("callee after the close: %+v", in)
		}
		inOrder(t, n, "callee.ProtocolClIncomingCloseCall", "callee.ProtocolCoDeleteVc")
		gone(t, n, in.H)
		n.Teardown()
	})
}

// TestFlow4_6_IncomingCallPended: the callee returns PENDING from
// ProtocolClIncomingCall; the call stays OFFERED with the answer outstanding
// (the callee may negotiate meanwhile, R-IN-9) until
// NdisClIncomingCallComplete, which reaches ProtocolCmIncomingCallComplete
// exactly once, before the call is connected.
func TestFlow4_6_IncomingCallPended(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		calleeMode := memdrv.Pend
		if mode == memdrv.PendEarly {
			calleeMode = memdrv.PendEarly
		}
		n.Callee.SetMode(calleeMode)
		ca, _, _ := n.Ready("svc")
		checked := false
		n.Callee.Accept = func(cv *memdrv.ClientVc, _ *ndis.CallParameters) ndis.Status {
			if calleeMode != memdrv.Pend {
				return ndis.StatusSuccess
			}
			// Runs after the handler returned PENDING, before the answer.
			n.Fab.Post(func() {
				checked = true
				vi := checkVc(t, n, cv.H, "ACTIVE", "OFFERED")
				if !slices.Equal(vi.Pending, []string{"IncomingCall"}) || cv.Answer.Returned != ndis.StatusPending || cv.Answer.Done {
					t.Errorf("pended answer: %+v %v", vi, cv.Answer)
				}
				// Negotiation before answering reaches the CM; this CM
				// offers no renegotiation of an unanswered call, and the
				// VC keeps its parameters.
				before := vi.Params.Clone()
				n.Callee.ModifyQoS(cv, paramsRate("svc", 200000))
				n.Run()
				checkResult(t, "negotiation", cv.QoS, wantRet(mode, ndis.StatusFailure), ndis.StatusFailure)
				if after := mustVc(t, n, cv.H).Params; txRate(after) != txRate(before) {
					t.Errorf("refused negotiation changed the parameters: %d -> %d", txRate(before), txRate(after))
				}
			})
			return ndis.StatusSuccess
		}
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		if calleeMode == memdrv.Pend && !checked {
			t.Errorf("the pended answer was never observed")
		}
		// The CM could not answer inside ProtocolCmMakeCall: it waits for
		// the callee, so the call pends whatever the CM's mode.
		checkResult(t, "make call", v.Make, ndis.StatusPending, ndis.StatusSuccess)
		in := n.Callee.LastIncoming()
		checkResult(t, "answer", in.Answer, ndis.StatusPending, ndis.StatusSuccess)
		if in.Connected != 1 {
			t.Errorf("not connected: %+v", in)
		}
		inOrder(t, n, "callee.ProtocolClIncomingCall", r.CM("ProtocolCmIncomingCallComplete"), "callee.ProtocolClCallConnected", "caller.ProtocolClMakeCallComplete")
		times(t, n, r.CM("ProtocolCmIncomingCallComplete"), 1)
		inOrderOn(t, n, in.H, "up callee.ProtocolClIncomingCall", "req callee.NdisClIncomingCallComplete",
			"up "+r.CM("ProtocolCmIncomingCallComplete"), dispatchReq(r, "DispatchCallConnected"), "up callee.ProtocolClCallConnected")
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// TestFlow4_7_IncomingCallRejected: the callee rejects (NOT_SUPPORTED), at
// once or through NdisClIncomingCallComplete. The caller's MakeCall fails;
// the CM deactivates and deletes the VC it created; neither side sees
// ProtocolClIncomingCloseCall or ProtocolClCallConnected.
func TestFlow4_7_IncomingCallRejected(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		n.Callee.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusNotSupported }
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		// The CM signals the rejection back (cause 21) as FAILURE.
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusFailure), ndis.StatusFailure)
		in := n.Callee.LastIncoming()
		if in == nil {
			t.Fatalf("no offer\n%s", n.Dump())
		}
		checkResult(t, "answer", in.Answer, wantRet(mode, ndis.StatusNotSupported), ndis.StatusNotSupported)
		if in.Offered != 1 || in.Connected != 0 || in.CloseIndicated != 0 || !in.Deleted {
			t.Errorf("callee VC: %+v", in)
		}
		never(t, n, "callee.ProtocolClIncomingCloseCall", "callee.ProtocolClCallConnected",
			"caller.ProtocolClIncomingCloseCall", "caller.ProtocolClCallConnected", "callee.ProtocolClCloseCallComplete")
		want := []string{"callee.ProtocolClIncomingCall"}
		if pended(mode) {
			want = append(want, r.CM("ProtocolCmIncomingCallComplete"))
		} else {
			never(t, n, r.CM("ProtocolCmIncomingCallComplete"))
		}
		if topo == ndistest.Split {
			want = append(want, r.MP("MiniportCoDeactivateVc"), "callee.ProtocolCoDeleteVc", r.MP("MiniportCoDeleteVc"))
		} else {
			want = append(want, "callee.ProtocolCoDeleteVc")
		}
		inOrder(t, n, want...)
		deleteReq := "req cm.NdisCoDeleteVc"
		if topo == ndistest.MCM {
			deleteReq = "req mcm.NdisMCmDeleteVc"
		}
		inOrderOn(t, n, in.H, "up callee.ProtocolClIncomingCall", deactivateReq(r), deleteReq, "up callee.ProtocolCoDeleteVc")
		gone(t, n, in.H)
		checkVc(t, n, v.H, "INACTIVE", "IDLE")
		if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Errorf("delete: %v", st)
		}
		n.Teardown()
	})
}

// TestFlow4_8_CallConnected: ProtocolClCallConnected reaches the callee
// exactly once, on an accepted call whose VC is active, before the caller's
// MakeCall completes; never on the caller's outgoing VC. The callee may not
// send before it (R-IN-8); a CallConnected for a call not accepted, or a
// second one, is refused (R-IN-6).
func TestFlow4_8_CallConnected(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		n.Callee.Accept = func(cv *memdrv.ClientVc, _ *ndis.CallParameters) ndis.Status {
			n.Expect("R-IN-8")
			n.Callee.Send(cv, []byte("too early"))
			if mode == memdrv.Pend {
				n.Fab.Post(func() { // the answer is still outstanding
					n.Expect("R-IN-6")
					if st := dispatchCallConnected(n, cv.H); st != ndis.StatusFailure {
						t.Errorf("CallConnected before the answer: %v", st)
					}
				})
			}
			return ndis.StatusSuccess
		}
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		in := n.Callee.LastIncoming()
		if !slices.Equal(in.SendStatus, []ndis.Status{ndis.StatusFailure}) {
			t.Errorf("early send status %v, want [FAILURE]", in.SendStatus)
		}
		times(t, n, "callee.ProtocolClCallConnected", 1)
		never(t, n, "caller.ProtocolClCallConnected", r.MP("MiniportCoSendNetBufferLists"))
		var connected, completed = -1, -1
		for i, e := range n.Events() {
			switch {
			case e.Kind == ndis.EventUpcall && e.Driver == "callee" && e.Func == "ProtocolClCallConnected":
				connected = i
			case e.Kind == ndis.EventUpcall && e.Driver == "caller" && e.Func == "ProtocolClMakeCallComplete",
				e.Kind == ndis.EventReturn && e.Driver == "caller" && e.Func == "NdisClMakeCall" && e.Status == ndis.StatusSuccess:
				completed = i
			}
		}
		if connected < 0 || completed < 0 || connected > completed {
			t.Errorf("CallConnected at %d, caller's completion at %d: connected must come first", connected, completed)
		}
		inOrderOn(t, n, in.H, activateReq(r), "up callee.ProtocolClIncomingCall", dispatchReq(r, "DispatchCallConnected"), "up callee.ProtocolClCallConnected")
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")

		// A second CallConnected is refused.
		n.Expect("R-IN-6")
		if st := dispatchCallConnected(n, in.H); st != ndis.StatusFailure {
			t.Errorf("second CallConnected: %v", st)
		}
		if in.Connected != 1 {
			t.Errorf("connected %d times", in.Connected)
		}
		// Now the callee may send.
		n.Callee.Send(in, []byte("now"))
		n.Run()
		if rx := v.RxData(); len(rx) != 1 || string(rx[0]) != "now" {
			t.Errorf("caller rx %q", rx)
		}
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// TestFlow4_9_ModifiedIncomingParamsRefused: the callee accepts with
// CALL_PARAMETERS_CHANGED and a token rate the CM cannot carry; the CM
// closes the accepted call with NDIS_STATUS_INCOMPATABLE_QOS (never
// CallConnected), the callee closes, the CM deletes its VC, and the caller's
// MakeCall fails without any incoming close on its side.
func TestFlow4_9_ModifiedIncomingParamsRefused(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		setMaxTokenRate(n, 1_000_000)
		n.Callee.Accept = func(_ *memdrv.ClientVc, p *ndis.CallParameters) ndis.Status {
			p.Flags |= ndis.CallParametersChanged
			p.CallMgrParameters.Transmit.TokenRate = 5_000_000
			return ndis.StatusSuccess
		}
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusIncompatibleQoS), ndis.StatusIncompatibleQoS)
		in := n.Callee.LastIncoming()
		checkResult(t, "answer", in.Answer, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if in.CloseIndicated != 1 || in.CloseStatus != ndis.StatusIncompatibleQoS || in.Connected != 0 || !in.Deleted {
			t.Errorf("callee VC: %+v", in)
		}
		checkResult(t, "callee close", in.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{"callee.ProtocolClIncomingCall"}
		if pended(mode) {
			want = append(want, r.CM("ProtocolCmIncomingCallComplete"))
		}
		want = append(want, "callee.ProtocolClIncomingCloseCall", r.CM("ProtocolCmCloseCall"), "callee.ProtocolCoDeleteVc")
		inOrder(t, n, want...)
		never(t, n, "callee.ProtocolClCallConnected", "caller.ProtocolClIncomingCloseCall", "caller.ProtocolClCallConnected")
		inOrderOn(t, n, in.H, dispatchReq(r, "DispatchIncomingCloseCall"), "up callee.ProtocolClIncomingCloseCall",
			"req callee.NdisClCloseCall", deactivateReq(r), "up callee.ProtocolCoDeleteVc")
		gone(t, n, in.H)
		checkVc(t, n, v.H, "INACTIVE", "IDLE")
		setMaxTokenRate(n, 0)
		n.Callee.Accept = nil
		// With the limit lifted the same VC carries a call (spec §9.1).
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		checkResult(t, "second make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// --- 4.10 – 4.13: closing calls ---

func setMiniportMode(n *ndistest.Net, m memdrv.Mode) {
	if n.Miniport != nil {
		n.Miniport.SetMode(m)
	}
}

// TestFlow4_10_ClientCloseSync: with a call manager (and miniport) that
// finish at once, NdisClCloseCall returns SUCCESS and no
// ProtocolClCloseCallComplete follows (R-GEN-3); the CM deactivated the VC
// before (R-CLOSE-8); the VC stays marked closing so no send is accepted
// (R-CLOSE-2); the far end sees an orderly incoming close and the CM deletes
// its VC; the client deletes its own.
func TestFlow4_10_ClientCloseSync(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		n.Caller.Send(v, []byte("last"))
		n.Run() // precondition: every send came back
		if !slices.Equal(v.SendStatus, []ndis.Status{ndis.StatusSuccess}) {
			t.Fatalf("send status %v", v.SendStatus)
		}
		setCMMode(n, memdrv.Immediate)
		setMiniportMode(n, memdrv.Immediate)
		n.Mark()
		if st := n.Caller.CloseCall(v); st != ndis.StatusSuccess {
			t.Fatalf("close: %v\n%s", st, n.Dump())
		}
		checkResult(t, "close", v.Close, ndis.StatusSuccess, ndis.StatusSuccess)
		never(t, n, "caller.ProtocolClCloseCallComplete", "caller.ProtocolClIncomingCloseCall")
		vi := checkVc(t, n, v.H, "INACTIVE", "CLOSED")
		if !vi.Closing {
			t.Errorf("VC not marked closing: %+v", vi)
		}
		seq := []string{"req caller.NdisClCloseCall", "up " + r.CM("ProtocolCmCloseCall"), deactivateReq(r)}
		if topo == ndistest.Split {
			seq = append(seq, "up miniport.MiniportCoDeactivateVc")
		}
		inOrderOn(t, n, v.H, append(seq, "ret caller.NdisClCloseCall")...)
		n.Expect("R-CLOSE-2")
		n.Caller.Send(v, []byte("after close"))
		if got := v.SendStatus[len(v.SendStatus)-1]; got != ndis.StatusClosing {
			t.Errorf("send after close: %v, want CLOSING", got)
		}
		never(t, n, r.MP("MiniportCoSendNetBufferLists"))
		n.Run()
		if in.CloseIndicated != 1 || in.CloseStatus != ndis.StatusSuccess || !in.Deleted {
			t.Errorf("far end: %+v", in)
		}
		checkResult(t, "far-end close", in.Close, ndis.StatusSuccess, ndis.StatusSuccess)
		gone(t, n, in.H)

		n.Mark()
		if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Fatalf("delete: %v", st)
		}
		if topo == ndistest.Split {
			inOrder(t, n, "cm.ProtocolCoDeleteVc", "miniport.MiniportCoDeleteVc")
		} else {
			inOrder(t, n, "mcm.ProtocolCoDeleteVc")
		}
		gone(t, n, v.H)
		n.Teardown()
	})
}

// TestFlow4_11_ClientClosePended: the CM pends ProtocolCmCloseCall; the VC
// is CLOSING and may not be deleted meanwhile (R-VC-6: CLOSING while the
// deactivation pends, NOT_ACCEPTED otherwise); the CM completes the close
// after the deactivation completed (from ProtocolCmDeactivateVcComplete when
// the miniport pended; an MCM deactivates synchronously and never gets that
// handler, R-REG-5), and ProtocolClCloseCallComplete follows exactly once.
func TestFlow4_11_ClientClosePended(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		ca, _, _ := n.Ready("svc")
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		cmMode := memdrv.Pend
		if mode == memdrv.PendEarly {
			cmMode = memdrv.PendEarly
		}
		setCMMode(n, cmMode)
		n.Mark()
		if st := n.Caller.CloseCall(v); st != ndis.StatusPending {
			t.Fatalf("close returned %v, want PENDING", st)
		}
		if cmMode == memdrv.Pend {
			vi := mustVc(t, n, v.H)
			if vi.Call != "CLOSING" || !vi.Closing || !slices.Contains(vi.Pending, "CloseCall") {
				t.Errorf("pended close: %+v", vi)
			}
			want := ndis.StatusNotAccepted
			if topo == ndistest.Split && mode == memdrv.Pend {
				if vi.Activation != "DEACTIVATING" {
					t.Errorf("activation %s, want DEACTIVATING", vi.Activation)
				}
				want = ndis.StatusClosing
			}
			n.Expect("R-VC-6")
			if st := n.Caller.Binding().CoDeleteVc(v.H); st != want {
				t.Errorf("delete during the close: %v, want %v", st, want)
			}
			if v.Close.Completions != 0 {
				t.Errorf("completed before the CM completed: %v", v.Close)
			}
		}
		n.Run()
		checkResult(t, "close", v.Close, ndis.StatusPending, ndis.StatusSuccess)
		times(t, n, "caller.ProtocolClCloseCallComplete", 1)
		complete := "req cm.NdisCmCloseCallComplete"
		if topo == ndistest.MCM {
			complete = "req mcm.NdisMCmCloseCallComplete"
			never(t, n, "mcm.ProtocolCmDeactivateVcComplete", "mcm.ProtocolCmActivateVcComplete")
			inOrderOn(t, n, v.H, "up mcm.ProtocolCmCloseCall", "req mcm.NdisMCmDeactivateVc", "ret mcm.NdisMCmDeactivateVc", complete, "up caller.ProtocolClCloseCallComplete")
		} else if pended(mode) {
			inOrderOn(t, n, v.H, "up cm.ProtocolCmCloseCall", "up miniport.MiniportCoDeactivateVc", "req miniport.NdisMCoDeactivateVcComplete",
				"up cm.ProtocolCmDeactivateVcComplete", complete, "up caller.ProtocolClCloseCallComplete")
		} else {
			inOrderOn(t, n, v.H, "up cm.ProtocolCmCloseCall", "up miniport.MiniportCoDeactivateVc", "ret cm.NdisCmDeactivateVc", complete, "up caller.ProtocolClCloseCallComplete")
			if slices.Contains(onObject(n, v.H), "up cm.ProtocolCmDeactivateVcComplete") {
				t.Errorf("ProtocolCmDeactivateVcComplete for a deactivation that did not pend")
			}
		}
		checkVc(t, n, v.H, "INACTIVE", "CLOSED")
		if in.CloseIndicated != 1 || !in.Deleted {
			t.Errorf("far end: %+v", in)
		}
		gone(t, n, in.H)
		if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Fatalf("delete: %v", st)
		}
		n.Teardown()
	})
}

// TestFlow4_12_RemoteClose: the callee hangs up; the caller gets
// ProtocolClIncomingCloseCall(SUCCESS), stops sending (R-CLOSE-15) and
// closes, from the handler or later (CloseLater); the CM deletes the callee's
// VC; the caller may reuse its VC since the close status was SUCCESS
// (spec §9.1). In split/Pend the far end also releases a call whose MakeCall
// is still pending (the caller's VC is being activated): the MakeCall fails
// exactly once and no incoming close is indicated (design.md §2).
func TestFlow4_12_RemoteClose(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		for _, later := range []bool{false, true} {
			t.Run(map[bool]string{false: "close-in-handler", true: "close-later"}[later], func(t *testing.T) {
				n := ndistest.New(t, topo, mode)
				r := rolesOf(n)
				ca, _, _ := n.Ready("svc")
				n.Caller.CloseLater = later
				v, _ := call(t, n, n.Caller, ca, "svc", false)
				in := n.Callee.LastIncoming()
				n.Mark()
				n.Callee.CloseCall(in)
				if later {
					vi := checkVc(t, n, v.H, "ACTIVE", "CLOSE_INDICATED")
					if vi.CloseStatus != "NDIS_STATUS_SUCCESS" || vi.Closing {
						t.Errorf("indicated close: %+v", vi)
					}
					n.Expect("R-CLOSE-15")
					n.Caller.Send(v, []byte("after the remote close"))
					if got := v.SendStatus; len(got) != 1 || got[0] != ndis.StatusClosing {
						t.Errorf("send after the incoming close: %v, want [CLOSING]", got)
					}
				}
				n.Run()
				checkResult(t, "callee close", in.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
				checkResult(t, "caller close", v.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
				if v.CloseIndicated != 1 || v.CloseStatus != ndis.StatusSuccess || in.CloseIndicated != 0 || !in.Deleted {
					t.Errorf("caller %+v callee %+v", v, in)
				}
				inOrder(t, n, r.CM("ProtocolCmCloseCall"), "caller.ProtocolClIncomingCloseCall", r.CM("ProtocolCmCloseCall"))
				never(t, n, "callee.ProtocolClIncomingCloseCall")
				inOrderOn(t, n, v.H, dispatchReq(r, "DispatchIncomingCloseCall"), "up caller.ProtocolClIncomingCloseCall",
					"req caller.NdisClCloseCall", "up "+r.CM("ProtocolCmCloseCall"), deactivateReq(r))
				vi := checkVc(t, n, v.H, "INACTIVE", "CLOSED")
				if vi.CloseStatus != "NDIS_STATUS_SUCCESS" {
					t.Errorf("close status %q", vi.CloseStatus)
				}
				gone(t, n, in.H)
				// After an orderly close the creator may start another call.
				n.Caller.MakeCall(v, ndistest.Params("svc"), false)
				n.Run()
				checkResult(t, "reuse", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
				closeAndDelete(t, n, n.Caller, v)
				n.Teardown()
			})
		}
	})

	t.Run("split/pend/release-during-setup", func(t *testing.T) {
		n := ndistest.New(t, ndistest.Split, memdrv.Pend)
		ca, _, _ := n.Ready("svc")
		observed := false
		var v *memdrv.ClientVc
		n.Callee.Accept = func(cv *memdrv.ClientVc, _ *ndis.CallParameters) ndis.Status {
			// Queued work: [this, answer] -> [answer, hangUp] -> after the
			// answer the caller's activation is queued behind hangUp.
			n.Fab.Post(func() {
				n.Fab.Post(func() {
					observed = true
					if vi, _ := vcInfo(n, v.H); vi.Activation != "ACTIVATING" || vi.Call != "OUT_SETUP" {
						t.Errorf("caller VC %s/%s, want ACTIVATING/OUT_SETUP", vi.Activation, vi.Call)
					}
					if vi, _ := vcInfo(n, cv.H); vi.Call != "ACCEPTED" {
						t.Errorf("callee call %s, want ACCEPTED", vi.Call)
					}
					n.Callee.CloseCall(cv)
				})
			})
			return ndis.StatusSuccess
		}
		v, _ = n.Caller.CreateVc(ca)
		// The caller deletes its VC as soon as the call failed: the CM
		// must have deactivated it before reporting the failure.
		n.Caller.AutoDelete = true
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		n.Run()
		if !observed {
			t.Fatalf("the hang-up never ran")
		}
		// An orderly release before the connect is a failed setup.
		checkResult(t, "make call", v.Make, ndis.StatusPending, ndis.StatusFailure)
		never(t, n, "caller.ProtocolClIncomingCloseCall", "caller.ProtocolClCallConnected", "callee.ProtocolClCallConnected")
		inOrderOn(t, n, v.H, "up cm.ProtocolCmActivateVcComplete", "req cm.NdisCmDeactivateVc", "up cm.ProtocolCmDeactivateVcComplete",
			"req cm.NdisCmMakeCallComplete", "up caller.ProtocolClMakeCallComplete", "ret caller.NdisCoDeleteVc")
		in := n.Callee.LastIncoming()
		checkResult(t, "callee close", in.Close, ndis.StatusPending, ndis.StatusSuccess)
		gone(t, n, in.H)
		if !v.Deleted {
			t.Errorf("caller VC not deleted\n%s", n.Dump())
		}
		gone(t, n, v.H)
		n.Teardown()
	})
}

func linkDown(n *ndistest.Net) {
	if n.MCM != nil {
		n.MCM.LinkDown(ndis.StatusDestOutOfOrder)
	} else {
		n.Miniport.IndicateLinkDown()
	}
}

// TestFlow4_13_LinkDown: the link is lost (split: the miniport indicates
// MEDIA_DISCONNECT to every bound protocol; MCM: it learns it internally).
// Every call is closed with DEST_OUT_OF_ORDER at every client (R-CLOSE-19),
// each client answers with NdisClCloseCall, the CM deletes the VCs it
// created, and a client-created VC must be deleted: a new call on it is
// refused (R-CLOSE-16). In Pend mode the link is also lost while a MakeCall
// is pending: the MakeCall fails exactly once, with no incoming close.
func TestFlow4_13_LinkDown(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		ca, _, _ := n.Ready("svc")
		ta := n.Third.Af()
		v1, _ := call(t, n, n.Caller, ca, "svc", false)
		v3, _ := call(t, n, n.Third, ta, "svc", false)
		ins := n.Callee.Incoming()
		if len(ins) != 2 {
			t.Fatalf("callee has %d calls", len(ins))
		}
		n.Mark()
		linkDown(n)
		n.Run()
		for i, v := range []*memdrv.ClientVc{v1, v3, ins[0], ins[1]} {
			if v.CloseIndicated != 1 || v.CloseStatus != ndis.StatusDestOutOfOrder {
				t.Errorf("VC %d (%v): %d incoming close(s) with %v", i, v.H, v.CloseIndicated, v.CloseStatus)
			}
			checkResult(t, fmt.Sprintf("close of VC %d", i), v.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		}
		times(t, n, "caller.ProtocolClIncomingCloseCall", 1)
		times(t, n, "third.ProtocolClIncomingCloseCall", 1)
		times(t, n, "callee.ProtocolClIncomingCloseCall", 2)
		never(t, n, "caller.ProtocolClIncomingDropParty", "callee.ProtocolClIncomingDropParty", "third.ProtocolClIncomingDropParty")
		if topo == ndistest.Split {
			for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
				if got := c.StatusIndications(); !slices.Equal(got, []ndis.Status{ndis.StatusMediaDisconnect}) {
					t.Errorf("%s status indications %v", c.Name, got)
				}
			}
			inOrder(t, n, "cm.ProtocolCoStatusEx", "caller.ProtocolClIncomingCloseCall")
			inOrder(t, n, "cm.ProtocolCoStatusEx", "third.ProtocolClIncomingCloseCall")
			times(t, n, "cm.ProtocolCoStatusEx", 1)
		} else {
			for _, d := range []string{"caller", "callee", "third"} {
				never(t, n, d+".ProtocolCoStatusEx")
			}
		}
		for _, in := range ins {
			if !in.Deleted {
				t.Errorf("CM did not delete %v", in.H)
			}
			gone(t, n, in.H)
		}
		for _, cv := range []struct {
			c *memdrv.Client
			v *memdrv.ClientVc
		}{{n.Caller, v1}, {n.Third, v3}} {
			vi := checkVc(t, n, cv.v.H, "INACTIVE", "CLOSED")
			if vi.CloseStatus != "NDIS_STATUS_DEST_OUT_OF_ORDER" {
				t.Errorf("%s VC close status %q", cv.c.Name, vi.CloseStatus)
			}
			n.Expect("R-CLOSE-16")
			if _, st := cv.c.Binding().ClMakeCall(cv.v.H, ndistest.Params("svc"), nil); st != ndis.StatusFailure {
				t.Errorf("%s: new call on a VC closed by the network: %v, want FAILURE", cv.c.Name, st)
			}
			if st := cv.c.DeleteVc(cv.v); st != ndis.StatusSuccess {
				t.Errorf("%s delete: %v", cv.c.Name, st)
			}
			gone(t, n, cv.v.H)
		}
		if topo == ndistest.Split {
			checkVc(t, n, n.CM.SignalingVc(), "ACTIVE", "IDLE")
		}

		if mode == memdrv.Pend {
			// The link goes while a MakeCall is pending.
			v4, _ := n.Caller.CreateVc(ca)
			before := len(n.Callee.Incoming())
			n.Mark()
			n.Caller.MakeCall(v4, ndistest.Params("svc"), false)
			linkDown(n)
			n.Run()
			checkResult(t, "make call during link loss", v4.Make, ndis.StatusPending, ndis.StatusDestOutOfOrder)
			if slices.Contains(onObject(n, v4.H), "up caller.ProtocolClIncomingCloseCall") {
				t.Errorf("incoming close on a call still being set up")
			}
			never(t, n, "callee.ProtocolClCallConnected", "caller.ProtocolClCallConnected")
			checkVc(t, n, v4.H, "INACTIVE", "IDLE")
			lost := n.Callee.Incoming()[before:]
			if len(lost) != 1 {
				t.Fatalf("%d callee VCs for the lost call, want 1", len(lost))
			}
			in := lost[0]
			if !in.Deleted || in.Connected != 0 {
				t.Errorf("callee VC of the lost call: %+v", in)
			}
			gone(t, n, in.H)
			if topo == ndistest.Split {
				// The link went while the CM was still activating the
				// callee's VC: the call is withdrawn before it is offered.
				if in.Offered != 0 || in.CloseIndicated != 0 {
					t.Errorf("withdrawn call: offered %d, close indications %d", in.Offered, in.CloseIndicated)
				}
			} else {
				// Offered, answer pending: closed like an established call
				// (R-CLOSE-20); the callee's pending answer still
				// completes exactly once.
				if in.Offered != 1 || in.CloseIndicated != 1 || in.CloseStatus != ndis.StatusDestOutOfOrder {
					t.Errorf("offered call: %+v", in)
				}
				checkResult(t, "pending answer", in.Answer, ndis.StatusPending, ndis.StatusSuccess)
				checkResult(t, "callee close", in.Close, ndis.StatusPending, ndis.StatusSuccess)
			}
			if st := n.Caller.DeleteVc(v4); st != ndis.StatusSuccess {
				t.Errorf("delete: %v\n%s", st, n.Dump())
			}
		}
		n.Teardown()
	})
}

// --- 4.14 ---

func notifyCloseAll(n *ndistest.Net) []ndis.Status {
	if n.MCM != nil {
		return n.MCM.NotifyCloseAll()
	}
	return n.CM.NotifyCloseAll()
}

func notifyCompleted(n *ndistest.Net, af *ndis.Af) (ndis.Status, bool) {
	if n.MCM != nil {
		return n.MCM.NotifyCompleted(af)
	}
	return n.CM.NotifyCompleted(af)
}

// eventIndex is the index, since the last Mark, of the first event of kind
// by driver calling or running fn (on obj if not nil), or -1.
func eventIndex(n *ndistest.Net, kind ndis.EventKind, driver, fn string, obj fmt.Stringer) int {
	for i, e := range n.Events() {
		if e.Kind == kind && e.Driver == driver && e.Func == fn && (obj == nil || e.Object == obj.String()) {
			return i
		}
	}
	return -1
}

// before asserts that both events happened, a first.
func before(t *testing.T, what string, a, b int) {
	t.Helper()
	if a < 0 || b < 0 || a > b {
		t.Errorf("%s: events at %d and %d, want both, in that order", what, a, b)
	}
}

// TestFlow4_14_AfTeardownByNotifyClose: the call manager withdraws its AF
// with calls (point-to-point and multipoint), SAPs and an idle VC active.
// New opens fail at once (R-AF-9); each client's ProtocolClNotifyCloseAf
// drops parties, closes calls, deletes its VCs, deregisters its SAPs and
// then closes the AF (R-AF-19), without blocking (R-AF-22);
// ProtocolCmNotifyCloseAfComplete reaches the CM only when the notification
// pended (R-AF-21). Nothing is left afterwards.
func TestFlow4_14_AfTeardownByNotifyClose(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, s1 := n.Ready("svc")
		s3 := n.Third.RegisterSap(n.Third.Af(), "svc3")
		n.Run()
		if s3.Register.Status != ndis.StatusSuccess {
			t.Fatalf("register svc3: %v", s3.Register)
		}
		v1, _ := call(t, n, n.Caller, ca, "svc", false)
		v2, p1 := call(t, n, n.Caller, ca, "svc", true)
		p2, _ := n.Caller.AddParty(v2, ndistest.Params("svc3"))
		n.Run()
		if p2.Add.Status != ndis.StatusSuccess {
			t.Fatalf("add party: %v", p2.Add)
		}
		idle, _ := n.Caller.CreateVc(ca)
		afs := []*memdrv.ClientAf{n.Caller.Af(), n.Callee.Af(), n.Third.Af()}

		n.Mark()
		sts := notifyCloseAll(n)
		if len(sts) != 3 {
			t.Fatalf("notified %d opens, want 3", len(sts))
		}
		for i, st := range sts {
			if st != wantRet(mode, ndis.StatusSuccess) {
				t.Errorf("notify %d returned %v", i, st)
			}
		}
		if reg := registration(t, n); !reg.Withdrawing {
			t.Errorf("registration not withdrawing: %+v", reg)
		}
		if mode == memdrv.Pend {
			for _, a := range afs {
				if ai, _ := afInfo(n, a.H); ai.State != "NOTIFY_CLOSE" || !slices.Contains(ai.Pending, "NotifyCloseAf") {
					t.Errorf("AF during the pended notification: %+v", ai)
				}
			}
		}
		n.Expect("R-AF-9")
		if h, st := n.Caller.Binding().ClOpenAddressFamilyEx(memdrv.AF, nil); h != nil || st != ndis.StatusFailure {
			t.Errorf("open while withdrawing: %v %v", h, st)
		}
		n.Run()

		for i, a := range afs {
			if a.Notified != 1 {
				t.Errorf("AF %d notified %d times", i, a.Notified)
			}
			checkResult(t, fmt.Sprintf("notify %d", i), a.Notify, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
			// The callee's and the third client's opens still hold VCs the
			// CM created, deleted only once their calls closed: the CM pends
			// those closes until then (R-AF-15).
			wantClose := wantRet(mode, ndis.StatusSuccess)
			if i > 0 {
				wantClose = ndis.StatusPending
			}
			checkResult(t, fmt.Sprintf("close AF %d", i), a.Close, wantClose, ndis.StatusSuccess)
			st, ok := notifyCompleted(n, a.H)
			if pended(mode) != ok || ok && st != ndis.StatusSuccess {
				t.Errorf("AF %d: ProtocolCmNotifyCloseAfComplete %v delivered=%v, want delivered=%v", i, st, ok, pended(mode))
			}
			if _, ok := afInfo(n, a.H); ok {
				t.Errorf("AF %d still open", i)
			}
		}
		// Every request of the teardown finished exactly once.
		for i, sp := range []*memdrv.ClientSap{s1, s3} {
			checkResult(t, fmt.Sprintf("deregister SAP %d", i), sp.Deregister, ndis.StatusPending, ndis.StatusSuccess)
		}
		for i, v := range append([]*memdrv.ClientVc{v1, v2}, append(n.Callee.Incoming(), n.Third.Incoming()...)...) {
			if !v.Close.ExactlyOnce() || v.Close.Status != ndis.StatusSuccess || !v.Deleted {
				t.Errorf("call %d (%v): close %v, deleted %v", i, v.H, v.Close, v.Deleted)
			}
		}
		if !idle.Deleted {
			t.Errorf("idle VC not deleted")
		}
		times(t, n, r.CM("ProtocolCmNotifyCloseAfComplete"), map[bool]int{false: 0, true: 3}[pended(mode)])
		times(t, n, r.CM("ProtocolCmCloseAf"), 3)
		for _, name := range []string{"caller", "callee", "third"} {
			times(t, n, name+".ProtocolClNotifyCloseAf", 1)
		}
		s := n.M.Snapshot()
		if len(s.Afs) != 0 || len(s.Saps) != 0 {
			t.Errorf("left behind:\n%s", s)
		}
		for _, v := range s.Vcs {
			if v.Kind != "signaling" {
				t.Errorf("VC left behind: %+v", v)
			}
		}
		if reg := registration(t, n); reg.Opens != 0 || !reg.Withdrawing {
			t.Errorf("registration %+v", reg)
		}

		// R-AF-19 order for the caller: drop the extra party, close the
		// calls, delete its VCs, then close the AF.
		closeAf := eventIndex(n, ndis.EventRequest, "caller", "NdisClCloseAddressFamily", afs[0].H)
		drop := eventIndex(n, ndis.EventRequest, "caller", "NdisClDropParty", nil)
		before(t, "caller: notify, then drop party", eventIndex(n, ndis.EventUpcall, "caller", "ProtocolClNotifyCloseAf", afs[0].H), drop)
		before(t, "caller: drop party, then close multipoint call", drop, eventIndex(n, ndis.EventRequest, "caller", "NdisClCloseCall", v2.H))
		for _, v := range []*memdrv.ClientVc{v1, v2} {
			before(t, "caller: close call, then delete VC", eventIndex(n, ndis.EventRequest, "caller", "NdisClCloseCall", v.H),
				eventIndex(n, ndis.EventReturn, "caller", "NdisCoDeleteVc", v.H))
		}
		for _, v := range []*ndis.Vc{v1.H, v2.H, idle.H} {
			before(t, "caller: delete VC, then close AF", eventIndex(n, ndis.EventReturn, "caller", "NdisCoDeleteVc", v), closeAf)
		}
		before(t, "caller: close AF, then ProtocolCmCloseAf", closeAf, eventIndex(n, ndis.EventUpcall, r.cm, "ProtocolCmCloseAf", afs[0].H))
		if p1.Drop.Done == p2.Drop.Done {
			t.Errorf("exactly one of the two parties is dropped, the other goes with the close: %v / %v", p1.Drop, p2.Drop)
		}
		for _, p := range []*memdrv.ClientParty{p1, p2} {
			if p.Drop.Done && (!p.Drop.ExactlyOnce() || p.Drop.Status != ndis.StatusSuccess) {
				t.Errorf("drop %v", p.Drop)
			}
		}
		// The callee and the third client deregister their SAPs before
		// closing their AF.
		for i, c := range []*memdrv.Client{n.Callee, n.Third} {
			before(t, c.Name+": deregister SAP, then close AF",
				eventIndex(n, ndis.EventRequest, c.Name, "NdisClDeregisterSap", nil),
				eventIndex(n, ndis.EventRequest, c.Name, "NdisClCloseAddressFamily", afs[i+1].H))
		}
		n.Teardown()
	})
}

// --- 4.15 – 4.17: parties ---

// multipoint sets up a multipoint call from the caller to the callee
// ("svc") with the third client ("svc3") added as a second leaf.
func multipoint(t *testing.T, n *ndistest.Net, ca *memdrv.ClientAf) (*memdrv.ClientVc, *memdrv.ClientParty, *memdrv.ClientParty) {
	t.Helper()
	v, p1 := call(t, n, n.Caller, ca, "svc", true)
	p2, _ := n.Caller.AddParty(v, ndistest.Params("svc3"))
	n.Run()
	if !p2.Add.ExactlyOnce() || p2.Add.Status != ndis.StatusSuccess {
		t.Fatalf("add party: %v\n%s", p2.Add, n.Dump())
	}
	return v, p1, p2
}

// readyMultipoint registers "svc" on the callee and "svc3" on the third client.
func readyMultipoint(t *testing.T, n *ndistest.Net) *memdrv.ClientAf {
	t.Helper()
	ca, _, _ := n.Ready("svc")
	s3 := n.Third.RegisterSap(n.Third.Af(), "svc3")
	n.Run()
	if s3.Register.Status != ndis.StatusSuccess {
		t.Fatalf("register svc3: %v", s3.Register)
	}
	return ca
}

func parties(t *testing.T, n *ndistest.Net, v *memdrv.ClientVc) []ndis.PartyInfo {
	t.Helper()
	return mustVc(t, n, v.H).Parties
}

// checkParties asserts the handles and states of a VC's parties.
func checkParties(t *testing.T, n *ndistest.Net, v *memdrv.ClientVc, want map[*memdrv.ClientParty]string) {
	t.Helper()
	got := parties(t, n, v)
	if len(got) != len(want) {
		t.Errorf("%d parties, want %d: %+v", len(got), len(want), got)
		return
	}
	for p, st := range want {
		found := false
		for _, pi := range got {
			if pi.Handle == p.H.String() {
				found = true
				if pi.State != st {
					t.Errorf("party %s is %s, want %s", pi.Handle, pi.State, st)
				}
			}
		}
		if !found {
			t.Errorf("party %v missing: %+v", p.H, got)
		}
	}
}

// TestFlow4_15_AddParty: a leaf is added to an established multipoint call;
// ProtocolClAddPartyComplete only when the CM pended (R-GEN-3/4); the new
// leaf's client is offered and connected; the root VC is not re-activated;
// closing the call is refused while the add is pending (design.md §2); data
// reaches every leaf. A failed add leaves the other parties untouched and
// its handle dead (R-PTY-7).
func TestFlow4_15_AddParty(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca := readyMultipoint(t, n)
		v, p1 := call(t, n, n.Caller, ca, "svc", true)
		n.Mark()
		p2, st := n.Caller.AddParty(v, ndistest.Params("svc3"))
		if st != wantRet(mode, ndis.StatusSuccess) || p2.H == nil {
			t.Fatalf("add party: %v, handle %v", st, p2.H)
		}
		if mode == memdrv.Pend {
			pi := parties(t, n, v)
			if len(pi) != 2 || pi[1].State != "ADDING" || !slices.Equal(pi[1].Pending, []string{"AddParty"}) {
				t.Errorf("pended add: %+v", pi)
			}
			n.Expect("R-CLOSE-4")
			if st := n.Caller.Binding().ClCloseCall(v.H, p1.H, nil); st != ndis.StatusFailure {
				t.Errorf("close while an add is pending: %v", st)
			}
		}
		n.Run()
		checkResult(t, "add party", p2.Add, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{r.CM("ProtocolCmAddParty"), "third.ProtocolCoCreateVc", "third.ProtocolClIncomingCall", "third.ProtocolClCallConnected"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClAddPartyComplete")
		} else {
			never(t, n, "caller.ProtocolClAddPartyComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "callee.ProtocolClIncomingCall", "caller.ProtocolClIncomingDropParty")
		if ev := onObject(n, v.H); slices.Contains(ev, activateReq(r)) {
			t.Errorf("root VC re-activated for a new party: %q", ev)
		}
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED", p2: "CONNECTED"})
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		tin := n.Third.LastIncoming()
		if tin == nil || tin.Connected != 1 {
			t.Fatalf("third leaf: %+v", tin)
		}
		ein := n.Callee.LastIncoming()
		n.Caller.Send(v, []byte("to all"))
		n.Run()
		for _, in := range []*memdrv.ClientVc{ein, tin} {
			if rx := in.RxData(); len(rx) != 1 || string(rx[0]) != "to all" {
				t.Errorf("leaf %v rx %q", in.H, rx)
			}
		}

		// A failed add.
		n.Mark()
		p3, _ := n.Caller.AddParty(v, ndistest.Params("nobody"))
		n.Run()
		checkResult(t, "add nobody", p3.Add, wantRet(mode, ndis.StatusInvalidSap), ndis.StatusInvalidSap)
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED", p2: "CONNECTED"})
		if pended(mode) {
			n.Expect("R-PTY-9")
			if st := n.Caller.Binding().ClDropParty(p3.H, nil); st != ndis.StatusFailure {
				t.Errorf("drop of a failed party: %v", st)
			}
		} else if p3.H != nil {
			t.Errorf("failed add returned handle %v", p3.H)
		}
		n.Teardown()
	})
}

// TestFlow4_16_DropParty: the client drops a leaf (the far end gets an
// orderly incoming close and its VC is deleted; the dropped handle is dead,
// R-PTY-9; the last party cannot be dropped, R-PTY-10); then a leaf leaves
// on its own: the root gets ProtocolClIncomingDropParty (never an incoming
// close while another leaf remains) and answers with NdisClDropParty
// (R-PTY-14). The call stays up for the remaining leaf.
func TestFlow4_16_DropParty(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca := readyMultipoint(t, n)
		v, p1, p2 := multipoint(t, n, ca)
		ein, tin := n.Callee.LastIncoming(), n.Third.LastIncoming()

		// Client-initiated.
		n.Mark()
		if st := n.Caller.DropParty(p2); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("drop returned %v", st)
		}
		if mode == memdrv.Pend {
			checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED", p2: "DROPPING"})
		}
		n.Run()
		checkResult(t, "drop", p2.Drop, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{r.CM("ProtocolCmDropParty"), "third.ProtocolClIncomingCloseCall"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClDropPartyComplete")
		} else {
			never(t, n, "caller.ProtocolClDropPartyComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "caller.ProtocolClIncomingDropParty", "caller.ProtocolClIncomingCloseCall", "callee.ProtocolClIncomingCloseCall")
		if tin.CloseIndicated != 1 || tin.CloseStatus != ndis.StatusSuccess || !tin.Deleted {
			t.Errorf("dropped leaf: %+v", tin)
		}
		gone(t, n, tin.H)
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED"})
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		n.Expect("R-PTY-9")
		if st := n.Caller.Binding().ClDropParty(p2.H, nil); st != ndis.StatusFailure {
			t.Errorf("second drop: %v", st)
		}
		n.Expect("R-PTY-10")
		if st := n.Caller.Binding().ClDropParty(p1.H, nil); st != ndis.StatusFailure {
			t.Errorf("drop of the last party: %v", st)
		}
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED"})

		// Remote-initiated: add the third client again; it hangs up.
		p4, _ := n.Caller.AddParty(v, ndistest.Params("svc3"))
		n.Run()
		if p4.Add.Status != ndis.StatusSuccess {
			t.Fatalf("re-add: %v", p4.Add)
		}
		tin2 := n.Third.LastIncoming()
		n.Mark()
		n.Third.CloseCall(tin2)
		n.Run()
		checkResult(t, "leaf hang-up", tin2.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if p4.DropIndicated != 1 {
			t.Errorf("incoming drops %d, want 1", p4.DropIndicated)
		}
		checkResult(t, "drop after the incoming drop", p4.Drop, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want = []string{r.CM("ProtocolCmCloseCall"), "caller.ProtocolClIncomingDropParty", r.CM("ProtocolCmDropParty")}
		if pended(mode) {
			want = append(want, "caller.ProtocolClDropPartyComplete")
		}
		inOrder(t, n, want...)
		inOrderOn(t, n, p4.H, dispatchReq(r, "DispatchIncomingDropParty"), "up caller.ProtocolClIncomingDropParty", "req caller.NdisClDropParty")
		if i := eventIndex(n, ndis.EventUpcall, "caller", "ProtocolClIncomingDropParty", p4.H); i >= 0 && n.Events()[i].Status != ndis.StatusSuccess {
			t.Errorf("drop status %v", n.Events()[i].Status)
		}
		never(t, n, "caller.ProtocolClIncomingCloseCall", "third.ProtocolClIncomingCloseCall", "callee.ProtocolClIncomingCloseCall")
		if !tin2.Deleted {
			t.Errorf("leaf VC not deleted")
		}
		gone(t, n, tin2.H)
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED"})
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		n.Caller.Send(v, []byte("still here"))
		n.Run()
		if rx := ein.RxData(); len(rx) != 1 || string(rx[0]) != "still here" {
			t.Errorf("remaining leaf rx %q", rx)
		}
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// TestFlow4_17_LastPartyClose: a multipoint call cannot be closed while two
// parties remain (R-CLOSE-4); after dropping the initial party it is closed
// with the handle of the remaining one (R-CLOSE-5), which dies with the call.
// When the last leaf leaves on its own, the root gets an incoming close, not
// an incoming drop (R-CLOSE-18), and closes with its last party.
func TestFlow4_17_LastPartyClose(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca := readyMultipoint(t, n)

		// Client-initiated.
		v, p1, p2 := multipoint(t, n, ca)
		tin := n.Third.LastIncoming()
		n.Expect("R-CLOSE-4")
		if st := n.Caller.Binding().ClCloseCall(v.H, p2.H, nil); st != ndis.StatusFailure {
			t.Errorf("close with two parties: %v", st)
		}
		if vi := checkVc(t, n, v.H, "ACTIVE", "CONNECTED"); vi.Closing {
			t.Errorf("refused close marked the VC closing")
		}
		checkParties(t, n, v, map[*memdrv.ClientParty]string{p1: "CONNECTED", p2: "CONNECTED"})
		n.Caller.DropParty(p1) // the initial party; p2 remains
		n.Run()
		checkResult(t, "drop initial party", p1.Drop, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		n.Mark()
		if st := n.Caller.CloseCall(v); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("close returned %v", st)
		}
		if mode == memdrv.Pend {
			checkParties(t, n, v, map[*memdrv.ClientParty]string{p2: "CLOSING"})
		}
		n.Run()
		checkResult(t, "close", v.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{r.CM("ProtocolCmCloseCall"), "third.ProtocolClIncomingCloseCall"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClCloseCallComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "caller.ProtocolClIncomingCloseCall", "caller.ProtocolClIncomingDropParty", r.CM("ProtocolCmDropParty"))
		if vi := checkVc(t, n, v.H, "INACTIVE", "CLOSED"); len(vi.Parties) != 0 {
			t.Errorf("parties left after the close: %+v", vi.Parties)
		}
		if !tin.Deleted {
			t.Errorf("leaf not deleted")
		}
		n.Expect("R-PTY-9")
		if st := n.Caller.Binding().ClDropParty(p2.H, nil); st != ndis.StatusFailure {
			t.Errorf("the closed call's party is still usable: %v", st)
		}
		if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Errorf("delete: %v", st)
		}

		// Remote-initiated: one leaf leaves (incoming drop), then the last
		// one (incoming close).
		v2, q1, q2 := multipoint(t, n, ca)
		ein, tin := n.Callee.LastIncoming(), n.Third.LastIncoming()
		n.Third.CloseCall(tin)
		n.Run()
		if q2.DropIndicated != 1 || v2.CloseIndicated != 0 {
			t.Fatalf("first leaf leaving: drop indications %d, close indications %d", q2.DropIndicated, v2.CloseIndicated)
		}
		n.Mark()
		n.Callee.CloseCall(ein)
		n.Run()
		never(t, n, "caller.ProtocolClIncomingDropParty", r.CM("ProtocolCmDropParty"))
		times(t, n, "caller.ProtocolClIncomingCloseCall", 1)
		if v2.CloseIndicated != 1 || v2.CloseStatus != ndis.StatusSuccess || q1.DropIndicated != 0 {
			t.Errorf("root: %d close indication(s) with %v, %d drop indication(s) for the last party", v2.CloseIndicated, v2.CloseStatus, q1.DropIndicated)
		}
		checkResult(t, "root close", v2.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		inOrder(t, n, r.CM("ProtocolCmCloseCall"), "caller.ProtocolClIncomingCloseCall", r.CM("ProtocolCmCloseCall"))
		inOrderOn(t, n, v2.H, "up caller.ProtocolClIncomingCloseCall", "req caller.NdisClCloseCall", "up "+r.CM("ProtocolCmCloseCall"))
		if vi := checkVc(t, n, v2.H, "INACTIVE", "CLOSED"); len(vi.Parties) != 0 {
			t.Errorf("parties left: %+v", vi.Parties)
		}
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Errorf("delete: %v", st)
		}
		n.Teardown()
	})
}

// --- 4.18 – 4.19: QoS ---

// paramsOf clones a live VC's activation parameters, so later changes to the
// buffer they point to cannot hide from a comparison.
func paramsOf(t *testing.T, n *ndistest.Net, h *ndis.Vc) *ndis.CallParameters {
	t.Helper()
	return mustVc(t, n, h).Params.Clone()
}

func sameParams(t *testing.T, what string, before, after *ndis.CallParameters) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("%s: parameters changed\nbefore %+v %+v\nafter  %+v %+v", what, before, before.CallMgrParameters, after, after.CallMgrParameters)
	}
}

// TestFlow4_18_ModifyQoS: the caller asks for a higher token rate; the CM
// gets the far end's VC re-activated and its client told
// (ProtocolClIncomingCallQoSChange, after the activation, R-QOS-7), then
// re-activates the caller's VC (R-QOS-2) and completes; both VCs carry the
// new parameters. Refused changes (above the CM's limit; split: the far
// end's miniport refuses the re-activation) fail with FAILURE and leave both
// VCs with their exact previous parameters (R-QOS-3, design.md §2).
func TestFlow4_18_ModifyQoS(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()

		n.Mark()
		if st := n.Caller.ModifyQoS(v, paramsRate("svc", 200000)); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("modify returned %v", st)
		}
		if mode == memdrv.Pend {
			if vi := mustVc(t, n, v.H); !slices.Contains(vi.Pending, "ModifyCallQoS") {
				t.Errorf("pended QoS change: %+v", vi.Pending)
			}
		}
		n.Run()
		checkResult(t, "modify", v.QoS, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		want := []string{r.CM("ProtocolCmModifyCallQoS"), "callee.ProtocolClIncomingCallQoSChange"}
		if pended(mode) {
			want = append(want, "caller.ProtocolClModifyCallQoSComplete")
		} else {
			never(t, n, "caller.ProtocolClModifyCallQoSComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "caller.ProtocolClIncomingCallQoSChange")
		inOrderOn(t, n, in.H, activateReq(r), "up callee.ProtocolClIncomingCallQoSChange")
		done := "ret caller.NdisClModifyCallQoS"
		if pended(mode) {
			done = "up caller.ProtocolClModifyCallQoSComplete"
		}
		inOrderOn(t, n, v.H, "up "+r.CM("ProtocolCmModifyCallQoS"), activateReq(r), done)
		if in.QoSChanges != 1 || txRate(in.Params) != 200000 {
			t.Errorf("callee: %d change(s), rate %d", in.QoSChanges, txRate(in.Params))
		}
		for _, h := range []*ndis.Vc{v.H, in.H} {
			if vi := checkVc(t, n, h, "ACTIVE", "CONNECTED"); txRate(vi.Params) != 200000 || len(vi.Pending) != 0 {
				t.Errorf("%v after the change: rate %d pending %v", h, txRate(vi.Params), vi.Pending)
			}
		}

		// Refused by the CM: the rate is above what it carries.
		setMaxTokenRate(n, 300000)
		b1, b2 := paramsOf(t, n, v.H), paramsOf(t, n, in.H)
		n.Mark()
		n.Caller.ModifyQoS(v, paramsRate("svc", 500000))
		n.Run()
		setMaxTokenRate(n, 0)
		checkResult(t, "refused modify", v.QoS, wantRet(mode, ndis.StatusFailure), ndis.StatusFailure)
		never(t, n, "callee.ProtocolClIncomingCallQoSChange", r.MP("MiniportCoActivateVc"))
		sameParams(t, "caller VC", b1, paramsOf(t, n, v.H))
		sameParams(t, "callee VC", b2, paramsOf(t, n, in.H))
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		if in.QoSChanges != 1 {
			t.Errorf("callee told of a refused change")
		}

		if topo == ndistest.Split {
			// Refused by the far end's miniport: its VC keeps the old
			// parameters, and so does the caller's.
			n.Miniport.RejectTokenRate(400000)
			b1, b2 := paramsOf(t, n, v.H), paramsOf(t, n, in.H)
			n.Mark()
			n.Caller.ModifyQoS(v, paramsRate("svc", 400000))
			n.Run()
			n.Miniport.RejectTokenRate(0)
			checkResult(t, "modify refused by the miniport", v.QoS, wantRet(mode, ndis.StatusFailure), ndis.StatusFailure)
			times(t, n, "miniport.MiniportCoActivateVc", 1)
			never(t, n, "callee.ProtocolClIncomingCallQoSChange")
			sameParams(t, "caller VC", b1, paramsOf(t, n, v.H))
			sameParams(t, "callee VC", b2, paramsOf(t, n, in.H))
			checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
			checkVc(t, n, in.H, "ACTIVE", "CONNECTED")
		}
		n.Caller.Send(v, []byte("after QoS"))
		n.Run()
		if rx := in.RxData(); len(rx) != 1 {
			t.Errorf("rx after the QoS changes: %q", rx)
		}
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// TestFlow4_19_IncomingQoSChange: the callee side changes the QoS; the CM
// re-activates the caller's VC with the new parameters and only once that
// activation has completed tells the caller (R-QOS-7), which accepts by
// returning; the callee's request then completes.
func TestFlow4_19_IncomingQoSChange(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		n.Mark()
		if st := n.Callee.ModifyQoS(in, paramsRate("svc", 250000)); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("modify returned %v", st)
		}
		n.Run()
		checkResult(t, "callee modify", in.QoS, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if v.QoSChanges != 1 || txRate(v.Params) != 250000 {
			t.Errorf("caller: %d change(s), rate %d", v.QoSChanges, txRate(v.Params))
		}
		activated := "ret " + strings.TrimPrefix(activateReq(r), "req ")
		if topo == ndistest.Split && pended(mode) {
			activated = "up cm.ProtocolCmActivateVcComplete"
		}
		inOrderOn(t, n, v.H, activateReq(r), activated, "up caller.ProtocolClIncomingCallQoSChange")
		want := []string{r.CM("ProtocolCmModifyCallQoS"), "caller.ProtocolClIncomingCallQoSChange"}
		if pended(mode) {
			want = append(want, "callee.ProtocolClModifyCallQoSComplete")
		}
		inOrder(t, n, want...)
		never(t, n, "callee.ProtocolClIncomingCallQoSChange", "caller.ProtocolClModifyCallQoSComplete")
		for _, h := range []*ndis.Vc{v.H, in.H} {
			if vi := checkVc(t, n, h, "ACTIVE", "CONNECTED"); txRate(vi.Params) != 250000 {
				t.Errorf("%v rate %d", h, txRate(vi.Params))
			}
		}
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

// --- 4.20 – 4.21: activation and deletion ---

// TestFlow4_20_Activation: split: the CM activates through
// MiniportCoActivateVc, which pends in the pended modes and then completes
// through ProtocolCmActivateVcComplete (never when it did not pend); the
// signalling VC is active; deactivation likewise; a deactivation of an
// inactive VC is refused (R-ACT-10); an activation the miniport refuses
// makes the call fail and the VC is disposed of before any offer. MCM:
// NdisMCmActivateVc/DeactivateVc are synchronous and never call the MCM
// back (R-REG-5); deactivating an inactive VC returns NOT_ACCEPTED
// (R-ACT-11).
func TestFlow4_20_Activation(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		ca, _, _ := n.Ready("svc")
		if topo == ndistest.Split {
			sig := checkVc(t, n, n.CM.SignalingVc(), "ACTIVE", "IDLE")
			if sig.Kind != "signaling" || sig.Creator != "cm" || sig.Client != "" || sig.Af != "" {
				t.Errorf("signalling VC %+v", sig)
			}
		}
		v, _ := n.Caller.CreateVc(ca)
		n.Mark()
		n.Caller.MakeCall(v, ndistest.Params("svc"), false)
		if topo == ndistest.Split && mode == memdrv.Pend {
			in := n.Callee.LastIncoming()
			if vi := checkVc(t, n, in.H, "ACTIVATING", "IDLE"); !slices.Equal(vi.Pending, []string{"ActivateVc"}) {
				t.Errorf("pended activation: %+v", vi)
			}
		}
		n.Run()
		checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		in := n.Callee.LastIncoming()
		for _, h := range []*ndis.Vc{v.H, in.H} {
			vi := checkVc(t, n, h, "ACTIVE", "CONNECTED")
			if _, ok := memdrv.VCIOf(vi.Params); !ok {
				t.Errorf("%v activated without a VCI: %+v", h, vi.Params)
			}
		}
		if topo == ndistest.Split {
			times(t, n, "miniport.MiniportCoActivateVc", 2)
			times(t, n, "cm.ProtocolCmActivateVcComplete", map[bool]int{false: 0, true: 2}[pended(mode)])
			seq := []string{"req cm.NdisCmActivateVc", "up miniport.MiniportCoActivateVc"}
			if pended(mode) {
				// (PendEarly delivers the completion just before the
				// PENDING return, R-GEN-10.)
				seq = append(seq, "req miniport.NdisMCoActivateVcComplete", "up cm.ProtocolCmActivateVcComplete")
			} else {
				seq = append(seq, "ret cm.NdisCmActivateVc")
			}
			inOrderOn(t, n, in.H, append(seq, "up callee.ProtocolClIncomingCall")...)
			if i := eventIndex(n, ndis.EventReturn, "cm", "NdisCmActivateVc", in.H); i < 0 || n.Events()[i].Status != wantRet(mode, ndis.StatusSuccess) {
				t.Errorf("NdisCmActivateVc of the callee's VC did not return %v", wantRet(mode, ndis.StatusSuccess))
			}
		} else {
			inOrderOn(t, n, in.H, "req mcm.NdisMCmActivateVc", "ret mcm.NdisMCmActivateVc", "up callee.ProtocolClIncomingCall")
			never(t, n, "mcm.ProtocolCmActivateVcComplete", "mcm.MiniportCoActivateVc")
			for _, e := range n.Events() {
				if e.Kind == ndis.EventReturn && e.Func == "NdisMCmActivateVc" && e.Status != ndis.StatusSuccess {
					t.Errorf("NdisMCmActivateVc returned %v", e.Status)
				}
			}
		}

		n.Mark()
		closeAndDelete(t, n, n.Caller, v)
		if topo == ndistest.Split {
			times(t, n, "miniport.MiniportCoDeactivateVc", 2)
			times(t, n, "cm.ProtocolCmDeactivateVcComplete", map[bool]int{false: 0, true: 2}[pended(mode)])
		} else {
			inOrderOn(t, n, v.H, "req mcm.NdisMCmDeactivateVc", "ret mcm.NdisMCmDeactivateVc")
			inOrderOn(t, n, in.H, "req mcm.NdisMCmDeactivateVc", "ret mcm.NdisMCmDeactivateVc", "req mcm.NdisMCmDeleteVc")
			never(t, n, "mcm.ProtocolCmDeactivateVcComplete")
		}

		v2, _ := n.Caller.CreateVc(ca)
		if topo == ndistest.MCM {
			n.Expect("R-ACT-11")
			if st := n.MCM.Adapter().MCmDeactivateVc(v2.H); st != ndis.StatusNotAccepted {
				t.Errorf("MCM deactivation of an inactive VC: %v, want NOT_ACCEPTED", st)
			}
		} else {
			n.Expect("R-ACT-10")
			if st := n.CM.Binding().CmDeactivateVc(v2.H); st != ndis.StatusFailure {
				t.Errorf("deactivation of an inactive VC: %v, want FAILURE", st)
			}

			// The miniport refuses the activation parameters.
			n.Miniport.RejectTokenRate(777000)
			n.Mark()
			n.Caller.MakeCall(v2, paramsRate("svc", 777000), false)
			n.Run()
			n.Miniport.RejectTokenRate(0)
			checkResult(t, "call the miniport cannot activate", v2.Make, wantRet(mode, ndis.StatusInvalidData), ndis.StatusInvalidData)
			seq := []string{"callee.ProtocolCoCreateVc", "miniport.MiniportCoActivateVc"}
			if pended(mode) {
				seq = append(seq, "cm.ProtocolCmActivateVcComplete")
			}
			inOrder(t, n, append(seq, "callee.ProtocolCoDeleteVc")...)
			never(t, n, "callee.ProtocolClIncomingCall", "miniport.MiniportCoDeactivateVc", "caller.ProtocolClIncomingCloseCall")
			failed := n.Callee.LastIncoming()
			if failed == in || !failed.Deleted || failed.Offered != 0 {
				t.Errorf("VC of the failed activation: %+v", failed)
			}
			gone(t, n, failed.H)
			checkVc(t, n, v2.H, "INACTIVE", "IDLE")
		}
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Errorf("delete: %v", st)
		}
		n.Teardown()
	})
}

// TestFlow4_21_VcDeletion: only the creator deletes a VC (R-VC-5), and only
// once it is inactive with no call (R-VC-6, R-VC-7). A client-created VC:
// the CM's ProtocolCoDeleteVc, then (split) MiniportCoDeleteVc. A CM-created
// VC: deactivated, then the client's ProtocolCoDeleteVc and
// MiniportCoDeleteVc. An MCM-created VC: NdisMCmDeactivateVc, then
// NdisMCmDeleteVc and only the client's ProtocolCoDeleteVc. The CM's
// signalling VC: deactivated, then MiniportCoDeleteVc only. Dead handles are
// refused (R-VC-9).
func TestFlow4_21_VcDeletion(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()

		n.Expect("R-VC-6")
		if st := n.Caller.Binding().CoDeleteVc(v.H); st != ndis.StatusNotAccepted {
			t.Errorf("delete of an active VC: %v", st)
		}
		n.Expect("R-VC-5")
		if st := n.Callee.Binding().CoDeleteVc(in.H); st != ndis.StatusFailure {
			t.Errorf("client deleting the CM's VC: %v", st)
		}
		n.Expect("R-VC-5")
		if st := n.Third.Binding().CoDeleteVc(v.H); st != ndis.StatusFailure {
			t.Errorf("another client deleting the caller's VC: %v", st)
		}
		if topo == ndistest.MCM {
			n.Expect("R-VC-7")
			if st := n.MCM.Adapter().MCmDeleteVc(in.H); st != ndis.StatusNotAccepted {
				t.Errorf("MCM deleting its active VC: %v", st)
			}
			n.Expect("R-VC-5")
			if st := n.MCM.Adapter().MCmDeleteVc(v.H); st != ndis.StatusFailure {
				t.Errorf("MCM deleting the client's VC: %v", st)
			}
		} else {
			n.Expect("R-VC-6")
			if st := n.CM.Binding().CoDeleteVc(in.H); st != ndis.StatusNotAccepted {
				t.Errorf("CM deleting its active VC: %v", st)
			}
		}
		checkVc(t, n, v.H, "ACTIVE", "CONNECTED")
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")

		n.Mark()
		n.Caller.CloseCall(v)
		n.Run()
		if !in.Deleted {
			t.Fatalf("the call manager did not delete its VC\n%s", n.Dump())
		}
		if topo == ndistest.MCM {
			inOrderOn(t, n, in.H, "req mcm.NdisMCmDeactivateVc", "ret mcm.NdisMCmDeactivateVc", "req mcm.NdisMCmDeleteVc",
				"up callee.ProtocolCoDeleteVc", "ret mcm.NdisMCmDeleteVc")
		} else {
			inOrderOn(t, n, in.H, "req cm.NdisCmDeactivateVc", "up miniport.MiniportCoDeactivateVc", "req cm.NdisCoDeleteVc",
				"up callee.ProtocolCoDeleteVc", "up miniport.MiniportCoDeleteVc", "ret cm.NdisCoDeleteVc")
		}
		gone(t, n, in.H)
		n.Expect("R-VC-9")
		if st := n.Callee.Binding().ClCloseCall(in.H, nil, nil); st != ndis.StatusFailure {
			t.Errorf("use of a deleted VC: %v", st)
		}

		n.Mark()
		if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Fatalf("delete: %v", st)
		}
		seq := []string{"req caller.NdisCoDeleteVc", "up " + r.CM("ProtocolCoDeleteVc")}
		if topo == ndistest.Split {
			seq = append(seq, "up miniport.MiniportCoDeleteVc")
		}
		inOrderOn(t, n, v.H, append(seq, "ret caller.NdisCoDeleteVc")...)
		gone(t, n, v.H)
		n.Expect("R-VC-9")
		if st := n.Caller.Binding().CoDeleteVc(v.H); st != ndis.StatusFailure {
			t.Errorf("second delete: %v", st)
		}

		if topo == ndistest.Split {
			sig := n.CM.SignalingVc()
			n.Mark()
			n.Teardown()
			inOrderOn(t, n, sig, "req cm.NdisCmDeactivateVc", "up miniport.MiniportCoDeactivateVc", "req cm.NdisCoDeleteVc",
				"up miniport.MiniportCoDeleteVc", "ret cm.NdisCoDeleteVc")
			for _, e := range onObject(n, sig) {
				if strings.HasSuffix(e, ".ProtocolCoDeleteVc") {
					t.Errorf("a protocol was told of the signalling VC's deletion: %q", e)
				}
			}
			return
		}
		n.Teardown()
	})
}

// --- 4.22 – 4.23 ---

// TestFlow4_22_DataPath: sends in both directions arrive in order and each
// list comes back with its own status (R-DATA-1, R-DATA-4); in Pend mode the
// lists stay outstanding until the miniport completes them; every received
// list is returned (the miniport's outstanding count is back to 0); a send
// on a VC with no call is refused list by list; per-VC counters add up.
func TestFlow4_22_DataPath(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		ca, _, _ := n.Ready("svc")

		idle, _ := n.Caller.CreateVc(ca)
		n.Expect("R-ACT-1")
		n.Mark()
		n.Caller.Send(idle, []byte("a"), []byte("b"))
		if !slices.Equal(idle.SendStatus, []ndis.Status{ndis.StatusFailure, ndis.StatusFailure}) {
			t.Errorf("refused sends: %v", idle.SendStatus)
		}
		never(t, n, r.MP("MiniportCoSendNetBufferLists"))
		if vi := mustVc(t, n, idle.H); vi.Stats.SendsRefused != 1 || vi.SendsOut != 0 {
			t.Errorf("refused send counters %+v", vi)
		}
		n.Caller.DeleteVc(idle)

		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		n.Mark()
		n.Caller.Send(v, []byte("one"), []byte("two"), []byte("three"))
		if mode == memdrv.Pend {
			if vi := mustVc(t, n, v.H); vi.SendsOut != 3 || len(v.SendStatus) != 0 {
				t.Errorf("pended sends: outstanding %d, statuses %v", vi.SendsOut, v.SendStatus)
			}
		}
		n.Run()
		if !slices.Equal(v.SendStatus, []ndis.Status{ndis.StatusSuccess, ndis.StatusSuccess, ndis.StatusSuccess}) {
			t.Errorf("send statuses %v", v.SendStatus)
		}
		if rx := in.RxData(); len(rx) != 3 || string(rx[0]) != "one" || string(rx[1]) != "two" || string(rx[2]) != "three" {
			t.Errorf("callee rx %q", rx)
		}
		inOrder(t, n, r.MP("MiniportCoSendNetBufferLists"), "callee.ProtocolCoReceiveNetBufferLists", "callee.ProtocolCoReceiveNetBufferLists",
			"callee.ProtocolCoReceiveNetBufferLists", "caller.ProtocolCoSendNetBufferListsComplete")
		times(t, n, r.MP("MiniportCoSendNetBufferLists"), 1)

		n.Callee.Send(in, []byte("x"), []byte("yz"))
		n.Run()
		if !slices.Equal(in.SendStatus, []ndis.Status{ndis.StatusSuccess, ndis.StatusSuccess}) {
			t.Errorf("callee send statuses %v", in.SendStatus)
		}
		if rx := v.RxData(); len(rx) != 2 || string(rx[0]) != "x" || string(rx[1]) != "yz" {
			t.Errorf("caller rx %q", rx)
		}
		cv, ev := mustVc(t, n, v.H), mustVc(t, n, in.H)
		if cv.Stats.TxPackets != 3 || cv.Stats.TxBytes != 11 || cv.Stats.RxPackets != 2 || cv.Stats.RxBytes != 3 || cv.Stats.TxErrors != 0 ||
			ev.Stats.TxPackets != 2 || ev.Stats.RxPackets != 3 || ev.Stats.RxBytes != 11 {
			t.Errorf("counters: caller %+v callee %+v", cv.Stats, ev.Stats)
		}
		for _, vi := range []ndis.VcInfo{cv, ev} {
			if vi.SendsOut != 0 || vi.RecvsOut != 0 {
				t.Errorf("%s: %d sends, %d receives outstanding", vi.Handle, vi.SendsOut, vi.RecvsOut)
			}
		}
		if got := outstandingReceives(n); got != 0 {
			t.Errorf("miniport has %d receives outstanding", got)
		}
		closeAndDelete(t, n, n.Caller, v)
		n.Teardown()
	})
}

func cmOidRequest(n *ndistest.Net, af *ndis.Af, req *ndis.OidRequest) ndis.Status {
	if n.MCM != nil {
		return n.MCM.Adapter().MCmOidRequest(af, nil, nil, req)
	}
	return n.CM.Binding().CoOidRequest(af, nil, nil, req)
}

// TestFlow4_23_Oids: a request with no AF reaches the miniport
// (MiniportCoOidRequest) and one with the AF the call manager
// (ProtocolCoOidRequest) (R-OID-1); the requester's
// ProtocolCoOidRequestComplete runs exactly once when the request pended and
// never otherwise (R-OID-4), with the buffer filled or BytesNeeded set. The
// call manager's OID_CO_ADDRESS_CHANGE reaches the client the same way.
func TestFlow4_23_Oids(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		n.Run()
		ca := n.Caller.Af()
		once := map[bool]int{false: 0, true: 1}[pended(mode)]

		// Client -> miniport.
		req := &ndis.OidRequest{Type: ndis.OidQuery, Oid: memdrv.OidLinkSpeed, InformationBuffer: make([]byte, 4)}
		n.Mark()
		if st := n.Caller.Binding().CoOidRequest(nil, nil, nil, req); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("link speed: %v", st)
		}
		done := "OidRequestComplete(0xff010001, NDIS_STATUS_SUCCESS)"
		if mode == memdrv.Pend && logCount(n.Caller, done) != 0 {
			t.Errorf("completed before the miniport completed it")
		}
		n.Run()
		if got := logCount(n.Caller, done); got != once {
			t.Errorf("%d completion(s), want %d: %q", got, once, n.Caller.Log())
		}
		if req.BytesWritten != 4 || binary.BigEndian.Uint32(req.InformationBuffer) != memdrv.LinkSpeed {
			t.Errorf("link speed reply: %d bytes, %x", req.BytesWritten, req.InformationBuffer)
		}
		inOrder(t, n, r.MP("MiniportCoOidRequest"))
		times(t, n, "caller.ProtocolCoOidRequestComplete", once)
		never(t, n, r.CM("ProtocolCoOidRequest"))

		// An OID the miniport does not know.
		bad := &ndis.OidRequest{Type: ndis.OidQuery, Oid: 0xFF01FFFF}
		n.Mark()
		if st := n.Caller.Binding().CoOidRequest(nil, nil, nil, bad); st != ndis.StatusInvalidOid {
			t.Errorf("unknown OID: %v", st)
		}
		n.Run()
		never(t, n, "caller.ProtocolCoOidRequestComplete")

		// Client -> call manager.
		name := r.cm
		req = &ndis.OidRequest{Type: ndis.OidQuery, Oid: ndis.OidCoGetAddresses, InformationBuffer: make([]byte, 16)}
		n.Mark()
		if st := n.Caller.Binding().CoOidRequest(ca.H, nil, nil, req); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("get addresses: %v", st)
		}
		n.Run()
		if got := logCount(n.Caller, "OidRequestComplete(0xfe000006, NDIS_STATUS_SUCCESS)"); got != once {
			t.Errorf("%d completion(s), want %d", got, once)
		}
		if string(req.InformationBuffer[:req.BytesWritten]) != name {
			t.Errorf("addresses %q, want %q", req.InformationBuffer[:req.BytesWritten], name)
		}
		inOrder(t, n, r.CM("ProtocolCoOidRequest"))
		never(t, n, r.MP("MiniportCoOidRequest"))
		times(t, n, "caller.ProtocolCoOidRequestComplete", once)

		// Too small a buffer.
		req = &ndis.OidRequest{Type: ndis.OidQuery, Oid: ndis.OidCoGetAddresses, InformationBuffer: make([]byte, 1)}
		if st := n.Caller.Binding().CoOidRequest(ca.H, nil, nil, req); st != wantRet(mode, ndis.StatusBufferTooShort) {
			t.Errorf("short buffer: %v", st)
		}
		n.Run()
		if req.BytesNeeded != len(name) || req.BytesWritten != 0 {
			t.Errorf("short buffer: needed %d written %d", req.BytesNeeded, req.BytesWritten)
		}
		if got := logCount(n.Caller, "OidRequestComplete(0xfe000006, NDIS_STATUS_BUFFER_TOO_SHORT)"); got != once {
			t.Errorf("%d completion(s), want %d", got, once)
		}

		// Call manager -> client.
		req = &ndis.OidRequest{Type: ndis.OidSet, Oid: ndis.OidCoAddressChange}
		n.Mark()
		if st := cmOidRequest(n, ca.H, req); st != wantRet(mode, ndis.StatusSuccess) {
			t.Errorf("address change: %v", st)
		}
		n.Run()
		if got := logCount(n.Caller, "OidRequest(0xfe000007)"); got != 1 {
			t.Errorf("client saw the address change %d times", got)
		}
		inOrder(t, n, "caller.ProtocolCoOidRequest")
		times(t, n, r.CM("ProtocolCoOidRequestComplete"), once)
		never(t, n, "callee.ProtocolCoOidRequest", "third.ProtocolCoOidRequest")
		n.Teardown()
	})
}
