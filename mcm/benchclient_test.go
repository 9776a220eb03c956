package mcm_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// benchClient is a lean CoNDIS client for the benchmarks: what a
// throughput- or scale-minded client does and nothing more. It opens the
// Q.2931 AF, registers one SAP, accepts every incoming call, answers an
// incoming close with NdisClCloseCall, counts what it receives (it keeps
// no data: NDIS_RECEIVE_FLAGS_RESOURCES lists are only counted, others are
// returned at once) and recycles its send lists. Its bookkeeping is
// counters, so it costs the same with 100,000 calls as with none, and its
// per-VC state is one small struct (benchVc) — unlike memdrv.Client, which
// records every event for tests to inspect.
//
// The benchmark goroutine drives it (one request at a time); its handlers
// run on the MCM's and the transport's goroutines and wake the driver
// through notify.
type benchClient struct {
	t      testing.TB
	name   string
	b      *ndis.Binding
	notify chan struct{}
	limit  time.Duration

	mu      sync.Mutex
	af      *ndis.Af
	afOpen  opResult
	afClose opResult
	sap     *ndis.Sap
	sapReg  opResult
	sapDrg  opResult
	// txFailures counts the sends completed with each failure status.
	txFailures map[ndis.Status]int

	made, makeFailed   atomic.Int64 // MakeCall outcomes
	closed             atomic.Int64 // CloseCall completions (returned or completed), both directions
	connected          atomic.Int64 // ProtocolClCallConnected
	incoming           atomic.Int64 // VCs the MCM created for this client and has not deleted
	rxSDUs, rxOctets   atomic.Int64
	txDone, txFailed   atomic.Int64
	closeIndications   atomic.Int64
	nbls               sync.Pool
	notifyCloseAfSeen  atomic.Bool
	wakeOnRx           bool // receives wake the driver (set before the first call)
	unexpectedFailures atomic.Int64
}

// opResult is how one pendable request on the AF or the SAP ended.
type opResult struct {
	done bool
	st   ndis.Status
}

// benchVc is the client's context of one VC.
type benchVc struct {
	c        *benchClient
	h        *ndis.Vc
	incoming bool
	sendsOut atomic.Int64
	// closeWanted: an incoming close arrived while sends were out; the
	// close goes once they are completed (R-CLOSE-1).
	closeWanted atomic.Bool
	closing     atomic.Bool
}

// newBenchClient binds a benchClient to n's MCM adapter and waits until it
// has opened the address family.
func newBenchClient(n *node, name string) *benchClient {
	n.w.t.Helper()
	c := &benchClient{t: n.w.t, name: name, notify: make(chan struct{}, 1), limit: n.w.limit}
	c.nbls.New = func() any { return new(ndis.NetBufferList) }
	if _, st := n.m.BindAdapter(n.d.Adapter(), name, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		return ndis.StatusSuccess
	}); st != ndis.StatusSuccess {
		c.t.Fatalf("binding %s: %v", name, st)
	}
	c.wait(name+" opened the AF", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.afOpen.done
	})
	if st := c.locked(func() ndis.Status { return c.afOpen.st }); st != ndis.StatusSuccess {
		c.t.Fatalf("%s: open AF: %v", name, st)
	}
	return c
}

func (c *benchClient) locked(f func() ndis.Status) ndis.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f()
}

func (c *benchClient) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait waits until cond holds; every handler wakes it.
func (c *benchClient) wait(what string, cond func() bool) {
	c.t.Helper()
	timeout := time.NewTimer(c.limit)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-c.notify:
		case <-timeout.C:
			c.t.Fatalf("%s: timed out waiting for: %s", c.name, what)
		}
	}
}

// listen registers service.
func (c *benchClient) listen(service string) {
	c.t.Helper()
	c.mu.Lock()
	af := c.af
	c.mu.Unlock()
	h, st := c.b.ClRegisterSap(af, c, q2931.ServiceSap(service))
	c.mu.Lock()
	if h != nil {
		c.sap = h
	}
	if st != ndis.StatusPending {
		c.sapReg = opResult{true, st}
	}
	c.mu.Unlock()
	c.wait("SAP registered", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sapReg.done
	})
	if st := c.locked(func() ndis.Status { return c.sapReg.st }); st != ndis.StatusSuccess {
		c.t.Fatalf("%s: register SAP %s: %v", c.name, service, st)
	}
}

// makeCalls creates k VCs and makes a call on each with a fresh copy of
// params (the buffer is the call manager's until the call completes), all
// in flight at once, and waits until every MakeCall has succeeded.
func (c *benchClient) makeCalls(k int, params func() *ndis.CallParameters) []*benchVc {
	c.t.Helper()
	c.mu.Lock()
	af := c.af
	c.mu.Unlock()
	want := c.made.Load() + int64(k)
	vs := make([]*benchVc, k)
	for i := range vs {
		v := &benchVc{c: c}
		h, st := c.b.CoCreateVc(af, v)
		if st != ndis.StatusSuccess {
			c.t.Fatalf("%s: CoCreateVc: %v", c.name, st)
		}
		v.h = h
		vs[i] = v
		switch _, st := c.b.ClMakeCall(h, params(), nil); st {
		case ndis.StatusPending:
		case ndis.StatusSuccess:
			c.made.Add(1)
		default:
			c.t.Fatalf("%s: ClMakeCall: %v", c.name, st)
		}
	}
	c.wait("every MakeCall completed", func() bool {
		if c.makeFailed.Load() > 0 {
			c.t.Fatalf("%s: %d MakeCall(s) failed", c.name, c.makeFailed.Load())
		}
		return c.made.Load() >= want
	})
	return vs
}

// closeCalls closes the calls of vs (which carry no sends) and deletes the
// VCs; it returns once every close has completed.
func (c *benchClient) closeCalls(vs []*benchVc) {
	c.t.Helper()
	want := c.closed.Load() + int64(len(vs))
	for _, v := range vs {
		v.closing.Store(true)
		switch st := c.b.ClCloseCall(v.h, nil, nil); st {
		case ndis.StatusPending:
		case ndis.StatusSuccess:
			c.closed.Add(1)
		default:
			c.t.Fatalf("%s: ClCloseCall: %v", c.name, st)
		}
	}
	c.wait("every CloseCall completed", func() bool { return c.closed.Load() >= want })
	for _, v := range vs {
		if st := c.b.CoDeleteVc(v.h); st != ndis.StatusSuccess {
			c.t.Fatalf("%s: CoDeleteVc: %v", c.name, st)
		}
	}
}

// waitIncoming waits until the MCM has created exactly n VCs for this
// client that it has not deleted, and at least connected calls were
// connected in all.
func (c *benchClient) waitIncoming(n, connected int64) {
	c.t.Helper()
	c.wait("incoming VCs", func() bool { return c.incoming.Load() == n && c.connected.Load() >= connected })
}

// send sends one SDU on v as one list (NdisCoSendNetBufferLists), with a
// recycled list.
func (c *benchClient) send(v *benchVc, data []byte) {
	n := c.nbls.Get().(*ndis.NetBufferList)
	n.Data, n.Context = data, v
	v.sendsOut.Add(1)
	c.b.CoSendNetBufferLists(v.h, n, 0)
}

// teardown deregisters the SAP, closes the AF and unbinds. Every VC must
// be gone.
func (c *benchClient) teardown() {
	c.t.Helper()
	c.mu.Lock()
	sap, af := c.sap, c.af
	c.mu.Unlock()
	if sap != nil {
		st := c.b.ClDeregisterSap(sap)
		if st != ndis.StatusPending {
			c.mu.Lock()
			c.sapDrg = opResult{true, st}
			c.mu.Unlock()
		}
		c.wait("SAP deregistered", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.sapDrg.done
		})
	}
	st := c.b.ClCloseAddressFamily(af)
	if st != ndis.StatusPending {
		c.mu.Lock()
		c.afClose = opResult{true, st}
		c.mu.Unlock()
	}
	c.wait("AF closed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.afClose.done
	})
	if st := c.locked(func() ndis.Status { return c.afClose.st }); st != ndis.StatusSuccess {
		c.t.Errorf("%s: close AF: %v", c.name, st)
	}
	if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
		c.t.Errorf("%s: unbind: %v", c.name, st)
	}
	if n := c.unexpectedFailures.Load(); n > 0 {
		c.t.Errorf("%s: %d unexpected failure(s)", c.name, n)
	}
}

// ---- handlers ----

func (c *benchClient) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	c.incoming.Add(1)
	return &benchVc{c: c, h: vc, incoming: true}, ndis.StatusSuccess
}

func (c *benchClient) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	if v := vcCtx.(*benchVc); v.incoming {
		c.incoming.Add(-1)
	}
	c.wake()
	return ndis.StatusSuccess
}

func (c *benchClient) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	switch req.Oid {
	case ndis.OidCoAddressChange, ndis.OidCoSignalingEnabled, ndis.OidCoSignalingDisabled, ndis.OidCoAfClose:
		return ndis.StatusSuccess
	}
	return ndis.StatusNotSupported
}

func (c *benchClient) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

func (c *benchClient) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	if af.AddressFamily != q2931.AF.AddressFamily {
		return
	}
	h, st := c.b.ClOpenAddressFamilyEx(q2931.AF, c)
	c.mu.Lock()
	if h != nil {
		c.af = h
	}
	if st != ndis.StatusPending {
		c.afOpen = opResult{true, st}
	}
	c.mu.Unlock()
	c.wake()
}

func (c *benchClient) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	var sdus, octets int64
	for n := nbls; n != nil; n = n.Next {
		sdus++
		octets += int64(len(n.Data))
	}
	c.rxSDUs.Add(sdus)
	c.rxOctets.Add(octets)
	if c.wakeOnRx {
		c.wake()
	}
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
}

func (c *benchClient) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	for n := nbls; n != nil; {
		next := n.Next
		if n.Status == ndis.StatusSuccess {
			c.txDone.Add(1)
		} else {
			c.txFailed.Add(1)
			c.mu.Lock()
			if c.txFailures == nil {
				c.txFailures = map[ndis.Status]int{}
			}
			c.txFailures[n.Status]++
			c.mu.Unlock()
		}
		v := n.Context.(*benchVc)
		*n = ndis.NetBufferList{}
		c.nbls.Put(n)
		if v.sendsOut.Add(-1) == 0 && v.closeWanted.Load() && v.closing.CompareAndSwap(false, true) {
			c.answerClose(v)
		}
		n = next
	}
	c.wake()
}

func (c *benchClient) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {}

func (c *benchClient) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	c.mu.Lock()
	if af != nil {
		c.af = af
	}
	c.afOpen = opResult{true, st}
	c.mu.Unlock()
	c.wake()
}

func (c *benchClient) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) {
	c.mu.Lock()
	c.afClose = opResult{true, st}
	c.mu.Unlock()
	c.wake()
}

// ProtocolClNotifyCloseAf: the benchmarks tear down before the MCM shuts
// down; if the AF is withdrawn anyway, the SAP goes and the AF is closed
// (from another goroutine: the handler must not block).
func (c *benchClient) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	c.notifyCloseAfSeen.Store(true)
	go func() {
		c.mu.Lock()
		sap, af := c.sap, c.af
		c.sap = nil
		c.mu.Unlock()
		if sap != nil {
			c.b.ClDeregisterSap(sap)
		}
		c.b.ClCloseAddressFamily(af)
	}()
	return ndis.StatusSuccess
}

func (c *benchClient) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	c.mu.Lock()
	if sap != nil {
		c.sap = sap
	}
	c.sapReg = opResult{true, st}
	c.mu.Unlock()
	c.wake()
}

func (c *benchClient) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	c.mu.Lock()
	c.sapDrg = opResult{true, st}
	c.mu.Unlock()
	c.wake()
}

func (c *benchClient) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if st == ndis.StatusSuccess {
		c.made.Add(1)
	} else {
		c.makeFailed.Add(1)
	}
	c.wake()
}

func (c *benchClient) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
}

func (c *benchClient) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	if st != ndis.StatusSuccess {
		c.unexpectedFailures.Add(1)
	}
	c.closed.Add(1)
	c.wake()
}

func (c *benchClient) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, params *ndis.CallParameters) {
}

func (c *benchClient) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {}

func (c *benchClient) ProtocolClIncomingCall(sapCtx, vcCtx any, params *ndis.CallParameters) ndis.Status {
	return ndis.StatusSuccess
}

func (c *benchClient) ProtocolClCallConnected(vcCtx any) {
	c.connected.Add(1)
	c.wake()
}

// ProtocolClIncomingCloseCall answers with NdisClCloseCall (R-CLOSE-14),
// once the VC's sends are completed (R-CLOSE-1).
func (c *benchClient) ProtocolClIncomingCloseCall(closeStatus ndis.Status, vcCtx any, closeData []byte) {
	v := vcCtx.(*benchVc)
	c.closeIndications.Add(1)
	v.closeWanted.Store(true)
	if v.sendsOut.Load() == 0 && v.closing.CompareAndSwap(false, true) {
		c.answerClose(v)
	}
}

func (c *benchClient) answerClose(v *benchVc) {
	switch st := c.b.ClCloseCall(v.h, nil, nil); st {
	case ndis.StatusPending:
	case ndis.StatusSuccess:
		c.closed.Add(1)
		c.wake()
	default:
		c.unexpectedFailures.Add(1)
	}
}

func (c *benchClient) ProtocolClIncomingDropParty(dropStatus ndis.Status, partyCtx any, closeData []byte) {
}

func (c *benchClient) ProtocolClIncomingCallQoSChange(vcCtx any, params *ndis.CallParameters) {}

var _ ndis.Client = (*benchClient)(nil)
