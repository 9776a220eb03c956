package ndis_test

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// The minimal drivers below do the least the contract allows, synchronously,
// so BenchmarkMediatorLifecycle measures the mediator's own cost per call;
// BenchmarkCallLifecycle adds the in-memory drivers' bookkeeping on top.

type minMCM struct {
	a         *ndis.Adapter
	calleeAf  *ndis.Af
	calleeSap *ndis.Sap
	// earlyClose: ProtocolCmCloseCall completes the close with
	// NdisMCmCloseCallComplete before it returns PENDING (R-GEN-10), as a
	// call manager on another goroutine may; the mediator parks the
	// completion until the handler returns.
	earlyClose bool
}

type minVc struct {
	h    *ndis.Vc
	peer *minVc
	in   bool
}

func (d *minMCM) ProtocolCmOpenAf(_ any, _ ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	return h, ndis.StatusSuccess
}
func (d *minMCM) ProtocolCmCloseAf(any) ndis.Status                { return ndis.StatusSuccess }
func (d *minMCM) ProtocolCmNotifyCloseAfComplete(any, ndis.Status) {}
func (d *minMCM) ProtocolCmRegisterSap(afCtx any, _ *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	d.calleeAf, d.calleeSap = afCtx.(*ndis.Af), h
	return h, ndis.StatusSuccess
}
func (d *minMCM) ProtocolCmDeregisterSap(any) ndis.Status { return ndis.StatusSuccess }
func (d *minMCM) ProtocolCmMakeCall(vcCtx any, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*minVc)
	in := &minVc{in: true, peer: v}
	h, st := d.a.MCmCreateVc(d.calleeAf, in)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	in.h = h
	d.a.MCmActivateVc(h, p)
	if st := d.a.MCmDispatchIncomingCall(d.calleeSap, h, p); st != ndis.StatusSuccess {
		return nil, st
	}
	v.peer = in
	d.a.MCmActivateVc(v.h, p)
	d.a.MCmDispatchCallConnected(h)
	return nil, ndis.StatusSuccess
}
func (d *minMCM) ProtocolCmIncomingCallComplete(ndis.Status, any, *ndis.CallParameters) {}
func (d *minMCM) ProtocolCmCloseCall(vcCtx, _ any, _ []byte) ndis.Status {
	v := vcCtx.(*minVc)
	if p := v.peer; p != nil {
		v.peer, p.peer = nil, nil
		d.a.MCmDispatchIncomingCloseCall(ndis.StatusSuccess, p.h, nil)
		if p.in {
			d.a.MCmDeleteVc(p.h) // its close finished inside the indication
		}
	}
	d.a.MCmDeactivateVc(v.h)
	if d.earlyClose {
		d.a.MCmCloseCallComplete(ndis.StatusSuccess, v.h, nil)
		return ndis.StatusPending
	}
	return ndis.StatusSuccess
}
func (d *minMCM) ProtocolCmAddParty(any, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (d *minMCM) ProtocolCmDropParty(any, []byte) ndis.Status { return ndis.StatusNotSupported }
func (d *minMCM) ProtocolCmModifyCallQoS(any, *ndis.CallParameters) ndis.Status {
	return ndis.StatusNotSupported
}
func (d *minMCM) ProtocolCmActivateVcComplete(ndis.Status, any, *ndis.CallParameters) {}
func (d *minMCM) ProtocolCmDeactivateVcComplete(ndis.Status, any)                     {}
func (d *minMCM) ProtocolCoCreateVc(_ any, vc *ndis.Vc) (any, ndis.Status) {
	return &minVc{h: vc}, ndis.StatusSuccess
}
func (d *minMCM) ProtocolCoDeleteVc(any) ndis.Status { return ndis.StatusSuccess }
func (d *minMCM) ProtocolCoOidRequest(_, _, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}
func (d *minMCM) ProtocolCoOidRequestComplete(_, _, _ any, _ *ndis.OidRequest, _ ndis.Status) {}
func (d *minMCM) MiniportCoSendNetBufferLists(any, *ndis.NetBufferList, ndis.SendFlags)       {}
func (d *minMCM) MiniportCoOidRequest(_, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}
func (d *minMCM) MiniportReturnNetBufferLists(any, *ndis.NetBufferList, ndis.ReturnFlags) {}

// minClient accepts every call and closes every call the network closes.
type minClient struct {
	b  *ndis.Binding
	af *ndis.Af
}

func (c *minClient) ProtocolCoAfRegisterNotify(any, ndis.AddressFamily) {}
func (c *minClient) ProtocolCoCreateVc(_ any, vc *ndis.Vc) (any, ndis.Status) {
	return vc, ndis.StatusSuccess
}
func (c *minClient) ProtocolCoDeleteVc(any) ndis.Status { return ndis.StatusSuccess }
func (c *minClient) ProtocolCoOidRequest(_, _, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}
func (c *minClient) ProtocolCoOidRequestComplete(_, _, _ any, _ *ndis.OidRequest, _ ndis.Status) {}
func (c *minClient) ProtocolCoReceiveNetBufferLists(_, _ any, _ *ndis.NetBufferList, _ int, _ ndis.ReceiveFlags) {
}
func (c *minClient) ProtocolCoSendNetBufferListsComplete(any, *ndis.NetBufferList, ndis.SendCompleteFlags) {
}
func (c *minClient) ProtocolCoStatusEx(_, _ any, _ *ndis.StatusIndication)                  {}
func (c *minClient) ProtocolClOpenAfCompleteEx(any, *ndis.Af, ndis.Status)                  {}
func (c *minClient) ProtocolClCloseAfComplete(ndis.Status, any)                             {}
func (c *minClient) ProtocolClNotifyCloseAf(any) ndis.Status                                { return ndis.StatusSuccess }
func (c *minClient) ProtocolClRegisterSapComplete(ndis.Status, any, *ndis.CoSap, *ndis.Sap) {}
func (c *minClient) ProtocolClDeregisterSapComplete(ndis.Status, any)                       {}
func (c *minClient) ProtocolClMakeCallComplete(ndis.Status, any, *ndis.Party, *ndis.CallParameters) {
}
func (c *minClient) ProtocolClModifyCallQoSComplete(ndis.Status, any, *ndis.CallParameters) {}
func (c *minClient) ProtocolClCloseCallComplete(ndis.Status, any, any)                      {}
func (c *minClient) ProtocolClAddPartyComplete(ndis.Status, any, *ndis.Party, *ndis.CallParameters) {
}
func (c *minClient) ProtocolClDropPartyComplete(ndis.Status, any) {}
func (c *minClient) ProtocolClIncomingCall(_, _ any, _ *ndis.CallParameters) ndis.Status {
	return ndis.StatusSuccess
}
func (c *minClient) ProtocolClCallConnected(any) {}
func (c *minClient) ProtocolClIncomingCloseCall(_ ndis.Status, vcCtx any, _ []byte) {
	c.b.ClCloseCall(vcCtx.(*ndis.Vc), nil, nil)
}
func (c *minClient) ProtocolClIncomingDropParty(ndis.Status, any, []byte)      {}
func (c *minClient) ProtocolClIncomingCallQoSChange(any, *ndis.CallParameters) {}

// BenchmarkMediatorLifecycle is BenchmarkCallLifecycle's call with minimal,
// synchronous drivers: the mediator's own cost per call (both VCs created,
// the call set up, indicated, connected, closed from one side and indicated
// on the other, both VCs deleted). A baseline for the in-memory drivers.
func BenchmarkMediatorLifecycle(b *testing.B) {
	n := newMinNet(b)
	b.ReportAllocs()
	for b.Loop() {
		n.call(b)
	}
	b.StopTimer()
	if s := n.m.Snapshot(); len(s.Vcs) != 0 {
		b.Fatalf("VCs left:\n%s", s)
	}
}

// minNet is a mediator with the minimal MCM and a caller and a callee
// bound to it, the callee listening.
type minNet struct {
	m              *ndis.Mediator
	mcm            *minMCM
	caller, callee *minClient
	params         *ndis.CallParameters
}

func newMinNet(tb testing.TB) *minNet {
	m := ndis.New(ndis.Options{Name: "bench-min"})
	d := &minMCM{}
	fam := ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}
	a, st := m.AddMiniportCallManager("mcm", d, d, func(a *ndis.Adapter) ndis.Status {
		d.a = a
		return a.MCmRegisterAddressFamilyEx(fam)
	})
	if st != ndis.StatusSuccess {
		tb.Fatal(st)
	}
	caller, callee := &minClient{}, &minClient{}
	for _, c := range []*minClient{caller, callee} {
		c.b, _ = m.BindAdapter(a, "client", c, c, nil)
		c.af, _ = c.b.ClOpenAddressFamilyEx(fam, c)
	}
	callee.b.ClRegisterSap(callee.af, nil, &ndis.CoSap{Sap: []byte("bench")})
	return &minNet{m: m, mcm: d, caller: caller, callee: callee,
		params: &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{}}}
}

// call runs one point-to-point call from creation to deletion.
func (n *minNet) call(tb testing.TB) {
	vc, st := n.caller.b.CoCreateVc(n.caller.af, nil)
	if st != ndis.StatusSuccess {
		tb.Fatal(st)
	}
	if _, st := n.caller.b.ClMakeCall(vc, n.params, nil); st != ndis.StatusSuccess {
		tb.Fatal("make", st)
	}
	// PENDING when the call manager completed the close early: its
	// completion has been delivered by the time ClCloseCall returns.
	if st := n.caller.b.ClCloseCall(vc, nil, nil); st != ndis.StatusSuccess && (st != ndis.StatusPending || !n.mcm.earlyClose) {
		tb.Fatal("close", st)
	}
	if st := n.caller.b.CoDeleteVc(vc); st != ndis.StatusSuccess {
		tb.Fatal("delete", st)
	}
}
