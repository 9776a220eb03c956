package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// IP over condis: the [ip] section's interface (package ipvc) and the
// CoNDIS client it makes its calls with.
//
// ipClient is that client, bound to the node's call manager like the
// control plane but on its own binding ("ip"), through the public ndis
// API only. It is ipvc.Calls for datagram calls to NODE/ip and the "ip"
// SAP, and nothing more; it stands in for the shared client core until
// that exists, and is kept to this file so that it can be swapped for it.
//
// Contract, as the Control's: a call is closed only once every send on it
// has completed (R-CLOSE-1); ProtocolClIncomingCloseCall is answered with
// NdisClCloseCall (R-CLOSE-14); the VCs it creates are deleted once their
// call failed or closed (R-CLOSE-12); received lists are returned before
// the receive handler returns (R-DATA-6); NdisClCloseCall is never issued
// while the VC's MakeCall is pending (a call abandoned during setup is
// closed once it connects).
type ipClient struct {
	cm  MCMCallManager
	log *slog.Logger
	b   *ndis.Binding

	bound chan struct{} // closed once BindAdapter has returned (b is set)

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change an await may wait for
	af      *ndis.Af
	afSt    ndis.Status // StatusPending while the AF is being opened; then its outcome
	afGone  bool        // the call manager withdrew the AF
	sap     *ndis.Sap
	sapSt   ndis.Status // of the registration, StatusPending while it is pending
	sapDone bool        // deregistered
	accept  func(peer string) ipvc.Receiver
	vcs     map[*ipVC]struct{}
	down    bool
	unbound bool
}

// ipPhase is the client's view of one of its VCs.
//
//	outgoing: making --ok--> connected --close--> closing --ok--> closed (deleted)
//	          making --fail--> closed (deleted)
//	incoming: offered --accept--> accepted --CallConnected--> connected --close--> closing --> closed
//	          offered --refuse--> closed; the call manager deletes it
type ipPhase uint8

const (
	ipMaking ipPhase = iota + 1
	ipOffered
	ipAccepted
	ipConnected
	ipClosing
	ipClosed
)

// ipVC is one VC of the client; an ipvc.Circuit once connected. Fields
// but h, incoming and made are guarded by ipClient.mu.
type ipVC struct {
	cl       *ipClient
	h        *ndis.Vc
	name     string
	incoming bool
	made     chan struct{} // outgoing: closed when MakeCall completes

	node      string
	rx        ipvc.Receiver
	phase     ipPhase
	maxSDU    int
	sendsOut  int
	wantClose bool
	abandoned bool // the caller gave up during setup: close once connected
	reason    ipvc.CloseReason
	makeErr   *ipvc.CallError
	told      bool // rx.Closed was called
}

func newIPClient(cm MCMCallManager, log *slog.Logger) (*ipClient, error) {
	cl := &ipClient{cm: cm, log: log, bound: make(chan struct{}), changed: make(chan struct{}),
		afSt: ndis.StatusPending, vcs: map[*ipVC]struct{}{}}
	a := cm.Adapter()
	_, st := a.Mediator().BindAdapter(a, "ip", cl, cl, func(b *ndis.Binding) ndis.Status {
		cl.b = b
		return ndis.StatusSuccess
	})
	close(cl.bound)
	if st != ndis.StatusSuccess {
		return nil, fmt.Errorf("ip: binding to the call manager: %v", st)
	}
	return cl, nil
}

func (cl *ipClient) notifyLocked() {
	close(cl.changed)
	cl.changed = make(chan struct{})
}

// await waits until cond (called with cl.mu held) holds, or ctx ends.
func (cl *ipClient) await(ctx context.Context, cond func() bool) error {
	for {
		cl.mu.Lock()
		if cond() {
			cl.mu.Unlock()
			return nil
		}
		ch := cl.changed
		cl.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// openAF waits for the AF to be open, and returns it.
func (cl *ipClient) openAF(ctx context.Context) (*ndis.Af, error) {
	if err := cl.await(ctx, func() bool { return cl.afSt != ndis.StatusPending || cl.down }); err != nil {
		return nil, fmt.Errorf("the call manager has not registered its address family: %w", err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch {
	case cl.down:
		return nil, errors.New("the node is shutting down")
	case cl.afGone:
		return nil, errors.New("the call manager withdrew its address family")
	case cl.afSt != ndis.StatusSuccess:
		return nil, fmt.Errorf("the address family could not be opened (%v)", cl.afSt)
	}
	return cl.af, nil
}

// Call makes a datagram call to node/ip (ipvc.Calls).
func (cl *ipClient) Call(ctx context.Context, node string, fs ndis.Flowspec, rx ipvc.Receiver) error {
	af, err := cl.openAF(ctx)
	if err != nil {
		return &ipvc.CallError{Node: node, Err: err}
	}
	params, err := cl.cm.CallParams(node+"/"+ipvc.Service, fs, fs, false)
	if err != nil {
		return &ipvc.CallError{Node: node, Err: err}
	}
	v := &ipVC{cl: cl, node: node, rx: rx, phase: ipMaking, made: make(chan struct{})}
	h, st := cl.b.CoCreateVc(af, v)
	if st != ndis.StatusSuccess {
		return &ipvc.CallError{Node: node, Err: fmt.Errorf("NdisCoCreateVc: %v", st)}
	}
	cl.mu.Lock()
	v.h, v.name = h, h.String()
	cl.vcs[v] = struct{}{}
	cl.mu.Unlock()
	if _, st := cl.b.ClMakeCall(h, params, nil); st != ndis.StatusPending {
		cl.makeCallDone(v, st, params)
	}
	select {
	case <-v.made:
	case <-ctx.Done():
		cl.mu.Lock()
		v.abandoned = true
		cl.mu.Unlock()
		cl.progress(v) // if it connected meanwhile
		return &ipvc.CallError{Node: node, Err: ctx.Err()}
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if v.makeErr != nil {
		return v.makeErr
	}
	return nil
}

// makeCallDone records a MakeCall's outcome: the receiver gets the circuit,
// or the VC is deleted.
func (cl *ipClient) makeCallDone(v *ipVC, st ndis.Status, params *ndis.CallParameters) {
	if st != ndis.StatusSuccess {
		cause := cl.cm.Cause(v.h, st)
		cl.mu.Lock()
		v.phase = ipClosed
		v.makeErr = &ipvc.CallError{Node: v.node, Status: st, Cause: cause}
		v.told = true // the caller learns it from Call
		cl.mu.Unlock()
		cl.delete(v)
		close(v.made)
		return
	}
	cl.mu.Lock()
	v.phase = ipConnected
	v.maxSDU = maxSDUOf(params)
	abandoned := v.abandoned
	cl.mu.Unlock()
	if !abandoned {
		v.rx.Up(v)
	}
	close(v.made)
	if abandoned {
		v.Close()
	}
}

// maxSDUOf is the largest SDU the call with params carries both ways.
func maxSDUOf(p *ndis.CallParameters) int {
	n := uint32(q2931.MaxAAL5SDU)
	if p != nil && p.CallMgrParameters != nil {
		for _, m := range []uint32{p.CallMgrParameters.Transmit.MaxSduSize, p.CallMgrParameters.Receive.MaxSduSize} {
			if m != 0 && m != ndis.QoSNotSpecified {
				n = min(n, m)
			}
		}
	}
	return int(n)
}

// Listen registers the "ip" SAP (ipvc.Calls).
func (cl *ipClient) Listen(accept func(peer string) ipvc.Receiver) error {
	ctx, cancel := context.WithTimeout(context.Background(), mcmSetupWait)
	defer cancel()
	af, err := cl.openAF(ctx)
	if err != nil {
		return err
	}
	sap, err := cl.cm.ServiceSap(ipvc.Service)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	cl.accept, cl.sapSt = accept, ndis.StatusPending
	cl.mu.Unlock()
	h, st := cl.b.ClRegisterSap(af, cl, sap)
	if st != ndis.StatusPending {
		cl.ProtocolClRegisterSapComplete(st, cl, sap, h)
	}
	if err := cl.await(ctx, func() bool { return cl.sapSt != ndis.StatusPending }); err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.sapSt != ndis.StatusSuccess {
		return fmt.Errorf("the call manager refused the SAP: %v (is another client listening on %q?)", cl.sapSt, ipvc.Service)
	}
	return nil
}

// mcmSetupWait bounds how long Listen waits for the AF and the SAP: both
// are local, so this is only a guard against a call manager that never
// answers.
const mcmSetupWait = 10 * time.Second

// Send sends one SDU (ipvc.Circuit).
func (v *ipVC) Send(sdu []byte) error {
	cl := v.cl
	cl.mu.Lock()
	if v.phase != ipConnected || v.wantClose {
		cl.mu.Unlock()
		return errors.New("the call is closing")
	}
	if len(sdu) > v.maxSDU {
		cl.mu.Unlock()
		return fmt.Errorf("SDU of %d octets, more than the call's MaxSduSize (%d)", len(sdu), v.maxSDU)
	}
	v.sendsOut++
	cl.mu.Unlock()
	cl.b.CoSendNetBufferLists(v.h, &ndis.NetBufferList{Data: sdu, Context: v}, 0)
	return nil
}

// MaxSDU is the call's negotiated MaxSduSize (ipvc.Circuit).
func (v *ipVC) MaxSDU() int {
	v.cl.mu.Lock()
	defer v.cl.mu.Unlock()
	return v.maxSDU
}

// Close closes the call once its sends have completed (ipvc.Circuit).
func (v *ipVC) Close() {
	v.cl.mu.Lock()
	v.wantClose = true
	v.cl.mu.Unlock()
	v.cl.progress(v)
}

func (v *ipVC) String() string { return v.name }

// progress closes v's call once that is wanted, it is connected and its
// sends have completed.
func (cl *ipClient) progress(v *ipVC) {
	cl.mu.Lock()
	if !(v.wantClose || v.abandoned) || v.sendsOut > 0 || (v.phase != ipConnected && v.phase != ipAccepted) {
		cl.mu.Unlock()
		return
	}
	prev := v.phase
	v.phase = ipClosing
	cl.mu.Unlock()
	switch st := cl.b.ClCloseCall(v.h, nil, nil); st {
	case ndis.StatusPending:
	case ndis.StatusSuccess:
		cl.closeCallDone(v, st)
	default:
		cl.log.Warn("ip: NdisClCloseCall refused", "vc", v.name, "status", st)
		cl.mu.Lock()
		v.phase = prev
		cl.mu.Unlock()
	}
}

func (cl *ipClient) closeCallDone(v *ipVC, st ndis.Status) {
	cl.mu.Lock()
	if v.phase != ipClosing {
		cl.mu.Unlock()
		return
	}
	if st != ndis.StatusSuccess {
		cl.log.Warn("ip: closing a call failed", "vc", v.name, "status", st)
		v.phase = ipConnected
		cl.mu.Unlock()
		return
	}
	v.phase = ipClosed
	incoming := v.incoming
	cl.mu.Unlock()
	if !incoming {
		cl.delete(v) // an incoming VC is the call manager's to delete
	}
	cl.tell(v)
}

// tell gives v's receiver its Closed, once.
func (cl *ipClient) tell(v *ipVC) {
	cl.mu.Lock()
	if v.told || v.rx == nil {
		cl.mu.Unlock()
		return
	}
	v.told = true
	r := v.reason
	cl.mu.Unlock()
	v.rx.Closed(r)
}

// delete deletes an outgoing VC whose call is over, and forgets it.
func (cl *ipClient) delete(v *ipVC) {
	if st := cl.b.CoDeleteVc(v.h); st != ndis.StatusSuccess {
		cl.log.Warn("ip: NdisCoDeleteVc refused", "vc", v.name, "status", st)
	}
	cl.mu.Lock()
	delete(cl.vcs, v)
	cl.notifyLocked()
	cl.mu.Unlock()
}

// Shutdown closes every call, deregisters the SAP, closes the AF and
// unbinds, waiting for each until ctx ends.
func (cl *ipClient) Shutdown(ctx context.Context) error { return cl.teardown(ctx, true) }

// teardown closes every call, then deregisters the SAP and closes the AF
// (R-AF-19), and with unbind unbinds; what is already done is skipped.
func (cl *ipClient) teardown(ctx context.Context, unbind bool) error {
	cl.mu.Lock()
	cl.down = true
	var vcs []*ipVC
	for v := range cl.vcs {
		v.wantClose = true
		vcs = append(vcs, v)
	}
	cl.notifyLocked()
	cl.mu.Unlock()
	for _, v := range vcs {
		cl.progress(v)
	}
	err := cl.await(ctx, func() bool { return len(cl.vcs) == 0 })
	cl.mu.Lock()
	sap, af := cl.sap, cl.af
	if cl.sapSt != ndis.StatusSuccess || cl.sapDone {
		sap = nil
	}
	cl.sap = nil
	if cl.afSt != ndis.StatusSuccess {
		af = nil
	}
	cl.af = nil
	cl.mu.Unlock()
	if err == nil && sap != nil {
		if st := cl.b.ClDeregisterSap(sap); st != ndis.StatusPending {
			cl.ProtocolClDeregisterSapComplete(st, cl)
		}
		err = cl.await(ctx, func() bool { return cl.sapDone })
	}
	if err == nil && af != nil {
		cl.mu.Lock()
		cl.afSt = ndis.StatusPending
		cl.mu.Unlock()
		if st := cl.b.ClCloseAddressFamily(af); st != ndis.StatusPending {
			cl.ProtocolClCloseAfComplete(st, cl)
		}
		err = cl.await(ctx, func() bool { return cl.afSt != ndis.StatusPending })
	}
	if err == nil && unbind {
		cl.mu.Lock()
		first := !cl.unbound
		cl.unbound = true
		cl.mu.Unlock()
		if first {
			if st := cl.b.CloseAdapterEx(); st != ndis.StatusSuccess {
				err = fmt.Errorf("ip: unbinding: %v", st)
			}
		}
	}
	return err
}

// --- handlers ---

// ProtocolCoAfRegisterNotify opens the call manager's address family.
func (cl *ipClient) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	if af.AddressFamily != cl.cm.AddressFamily().AddressFamily {
		return
	}
	go func() { // not from the handler: the open may complete at once
		<-cl.bound
		h, st := cl.b.ClOpenAddressFamilyEx(cl.cm.AddressFamily(), cl)
		if st != ndis.StatusPending {
			cl.ProtocolClOpenAfCompleteEx(cl, h, st)
		}
	}()
}

// ProtocolClOpenAfCompleteEx records the AF's open.
func (cl *ipClient) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	cl.mu.Lock()
	cl.af, cl.afSt = af, st
	cl.notifyLocked()
	cl.mu.Unlock()
}

// ProtocolClCloseAfComplete records the AF's close.
func (cl *ipClient) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) {
	cl.mu.Lock()
	cl.afSt = st
	if st == ndis.StatusSuccess {
		cl.af = nil
	}
	cl.notifyLocked()
	cl.mu.Unlock()
}

// ProtocolClNotifyCloseAf: the call manager withdraws the AF; every call
// is closed and the SAP deregistered before the AF is closed (R-AF-19).
func (cl *ipClient) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	cl.mu.Lock()
	cl.afGone = true
	cl.mu.Unlock()
	go cl.teardown(context.Background(), false)
	return ndis.StatusSuccess
}

// ProtocolCoOidRequest accepts the call manager's notifications.
func (cl *ipClient) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	switch req.Oid {
	case ndis.OidCoAddressChange, ndis.OidCoSignalingEnabled, ndis.OidCoSignalingDisabled:
		return ndis.StatusSuccess
	case ndis.OidCoAfClose:
		cl.ProtocolClNotifyCloseAf(afCtx)
		return ndis.StatusSuccess
	}
	return ndis.StatusNotSupported
}

// ProtocolCoOidRequestComplete: the client makes no OID requests.
func (cl *ipClient) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// ProtocolClRegisterSapComplete records the SAP's registration.
func (cl *ipClient) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	cl.mu.Lock()
	cl.sap, cl.sapSt = sap, st
	cl.notifyLocked()
	cl.mu.Unlock()
}

// ProtocolClDeregisterSapComplete records the SAP's deregistration.
func (cl *ipClient) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	if st != ndis.StatusSuccess {
		cl.log.Warn("ip: deregistering the SAP", "status", st)
	}
	cl.mu.Lock()
	cl.sapDone = true
	cl.notifyLocked()
	cl.mu.Unlock()
}

// ProtocolClMakeCallComplete records a pended MakeCall.
func (cl *ipClient) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*ipVC); ok {
		cl.makeCallDone(v, st, params)
	}
}

// ProtocolClCloseCallComplete records a pended close.
func (cl *ipClient) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	if v, ok := vcCtx.(*ipVC); ok {
		cl.closeCallDone(v, st)
	}
}

// ProtocolCoCreateVc takes a VC the call manager created for an incoming call.
func (cl *ipClient) ProtocolCoCreateVc(afCtx any, h *ndis.Vc) (any, ndis.Status) {
	v := &ipVC{cl: cl, h: h, name: h.String(), incoming: true, phase: ipOffered}
	cl.mu.Lock()
	cl.vcs[v] = struct{}{}
	cl.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc forgets a VC the call manager deleted.
func (cl *ipClient) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v, ok := vcCtx.(*ipVC)
	if !ok {
		return ndis.StatusSuccess
	}
	cl.mu.Lock()
	v.phase = ipClosed
	delete(cl.vcs, v)
	cl.notifyLocked()
	cl.mu.Unlock()
	cl.tell(v) // an accepted call that never connected
	return ndis.StatusSuccess
}

// ProtocolClIncomingCall accepts a call on the "ip" SAP if ipvc does (the
// caller has a route).
func (cl *ipClient) ProtocolClIncomingCall(sapCtx, vcCtx any, params *ndis.CallParameters) ndis.Status {
	v, _ := vcCtx.(*ipVC)
	if v == nil {
		return ndis.StatusFailure
	}
	peer := cl.cm.Caller(params)
	cl.mu.Lock()
	accept, down := cl.accept, cl.down
	cl.mu.Unlock()
	var rx ipvc.Receiver
	if !down && accept != nil && peer != "" {
		rx = accept(peer)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if rx == nil || v.phase != ipOffered {
		v.phase = ipClosed
		return ndis.StatusFailure
	}
	v.node, v.rx, v.phase = peer, rx, ipAccepted
	v.maxSDU = maxSDUOf(params) // R-IN-10: read now, the buffer is the call manager's
	return ndis.StatusSuccess
}

// ProtocolClCallConnected: an accepted call is up.
func (cl *ipClient) ProtocolClCallConnected(vcCtx any) {
	v, ok := vcCtx.(*ipVC)
	if !ok {
		return
	}
	cl.mu.Lock()
	if v.phase != ipAccepted {
		cl.mu.Unlock()
		return
	}
	v.phase = ipConnected
	cl.mu.Unlock()
	v.rx.Up(v)
	cl.progress(v) // closed while it was being connected
}

// ProtocolCoReceiveNetBufferLists hands each SDU to the receiver, which
// copies it, and returns the lists.
func (cl *ipClient) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v, _ := vcCtx.(*ipVC)
	var rx ipvc.Receiver
	if v != nil {
		cl.mu.Lock()
		if v.phase == ipConnected || v.phase == ipAccepted || v.phase == ipMaking {
			rx = v.rx
		}
		cl.mu.Unlock()
	}
	if rx != nil {
		for n := nbls; n != nil; n = n.Next {
			rx.Receive(n.Data)
		}
	}
	if flags&ndis.ReceiveFlagsResources == 0 {
		cl.b.ReturnNetBufferLists(nbls, 0)
	}
}

// ProtocolCoSendNetBufferListsComplete counts the sends back; a close
// waiting for them goes ahead.
func (cl *ipClient) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	var resume []*ipVC
	cl.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		v, ok := n.Context.(*ipVC)
		if !ok {
			continue
		}
		v.sendsOut--
		if v.sendsOut == 0 && v.wantClose {
			resume = append(resume, v)
		}
	}
	cl.mu.Unlock()
	for _, v := range resume {
		cl.progress(v)
	}
}

// ProtocolCoStatusEx: status indications are not used.
func (cl *ipClient) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {}

// ProtocolClIncomingCloseCall records why the call ends and closes it once
// its sends have completed (R-CLOSE-14, R-CLOSE-1).
func (cl *ipClient) ProtocolClIncomingCloseCall(st ndis.Status, vcCtx any, closeData []byte) {
	v, ok := vcCtx.(*ipVC)
	if !ok {
		return
	}
	cause := cl.cm.Cause(v.h, st)
	cl.mu.Lock()
	v.reason = ipvc.CloseReason{Status: st, Cause: cause, ByPeer: true}
	v.wantClose = true
	cl.mu.Unlock()
	cl.progress(v)
}

// ProtocolClIncomingCallQoSChange takes the new MaxSduSize.
func (cl *ipClient) ProtocolClIncomingCallQoSChange(vcCtx any, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*ipVC); ok {
		cl.mu.Lock()
		v.maxSDU = maxSDUOf(params)
		cl.mu.Unlock()
	}
}

// The client makes no point-to-multipoint calls and no QoS changes.

// ProtocolClModifyCallQoSComplete is not expected: the client never asks.
func (cl *ipClient) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
}

// ProtocolClAddPartyComplete is not expected: the client adds no parties.
func (cl *ipClient) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, params *ndis.CallParameters) {
}

// ProtocolClDropPartyComplete is not expected: the client drops no parties.
func (cl *ipClient) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {}

// ProtocolClIncomingDropParty is not expected on point-to-point calls.
func (cl *ipClient) ProtocolClIncomingDropParty(st ndis.Status, partyCtx any, closeData []byte) {}

var (
	_ ndis.Client  = (*ipClient)(nil)
	_ ipvc.Calls   = (*ipClient)(nil)
	_ ipvc.Circuit = (*ipVC)(nil)
)

// startIP brings up the [ip] section's interface: the client, the TUN
// device and ipvc on them.
func (n *Node) startIP() error {
	c := n.Config.IP
	if c == nil {
		return nil
	}
	cfg := *c
	cfg.Logger = n.log
	dev, err := ipvc.Open(cfg)
	if err != nil {
		return &Error{File: n.Config.File, Key: "ip", Problem: err.Error()}
	}
	cl, err := newIPClient(n.CallManager(), n.log)
	if err != nil {
		dev.Close()
		return err
	}
	ifc, err := ipvc.New(cfg, dev, cl)
	if err != nil {
		dev.Close()
		cl.Shutdown(context.Background())
		return &Error{File: n.Config.File, Key: "ip", Problem: err.Error()}
	}
	n.ip, n.ipClient = ifc, cl
	n.log.Info("IP over condis up", "node", n.Config.Name, "device", cfg.Device, "address", cfg.Address.String(), "routes", len(cfg.Routes))
	return nil
}

// stopIP closes the interface and its calls.
func (n *Node) stopIP(ctx context.Context) error {
	if n.ip == nil {
		return nil
	}
	return errors.Join(n.ip.Close(), n.ipClient.Shutdown(ctx))
}

// IP is the node's IP over condis interface, nil without an [ip] section.
func (n *Node) IP() *ipvc.Interface { return n.ip }
