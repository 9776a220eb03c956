package miniport_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCM is the smallest protocol driver a call manager needs to be to
// use the miniport: bound to the adapter, it creates VCs with no AF
// (signalling VCs, R-VC-3; the tests use them for data too, which the
// miniport cannot tell apart), activates and deactivates them with
// NdisCmActivateVc/NdisCmDeactivateVc, sends and receives on them and
// hears link events. Everything it is told goes into channels the test
// reads, in the order it was told.
type testCM struct {
	t testing.TB
	b *ndis.Binding

	mu sync.Mutex
	// onLink, if set, runs inside ProtocolCoStatusEx for each link event.
	onLink func(miniport.LinkEvent)
	events chan miniport.LinkEvent
	// log records the order of completions and receives across VCs.
	log []string
	// media records the status indications on VCs ("name STATUS").
	media []string
	// gate, if set, holds every receive indication until it is closed: a
	// call manager taking its time.
	gate chan struct{}
}

// tvc is the test CM's VC context.
type tvc struct {
	name  string
	h     *ndis.Vc
	act   chan ndis.Status // ProtocolCmActivateVcComplete
	deact chan ndis.Status // ProtocolCmDeactivateVcComplete
	rx    chan []byte      // ProtocolCoReceiveNetBufferLists, one per list
	sent  chan sendDone    // ProtocolCoSendNetBufferListsComplete, one per list
}

type sendDone struct {
	seq int
	st  ndis.Status
}

func bindCM(t testing.TB, mp *miniport.Miniport, m *ndis.Mediator) *testCM {
	cm := &testCM{t: t, events: make(chan miniport.LinkEvent, 64)}
	b, st := m.BindAdapter(mp.Adapter(), "cm", cm, cm, nil)
	if st != ndis.StatusSuccess {
		t.Fatalf("NdisOpenAdapterEx: %v", st)
	}
	cm.b = b
	return cm
}

func (cm *testCM) note(format string, args ...any) {
	cm.mu.Lock()
	cm.log = append(cm.log, fmt.Sprintf(format, args...))
	cm.mu.Unlock()
}

func (cm *testCM) history() []string {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return append([]string(nil), cm.log...)
}

// createVc is NdisCoCreateVc with no AF.
func (cm *testCM) createVc(name string) *tvc {
	cm.t.Helper()
	v := &tvc{name: name, act: make(chan ndis.Status, 1), deact: make(chan ndis.Status, 1), rx: make(chan []byte, 1024), sent: make(chan sendDone, 1024)}
	h, st := cm.b.CoCreateVc(nil, v)
	if st != ndis.StatusSuccess {
		cm.t.Fatalf("NdisCoCreateVc(%s): %v", name, st)
	}
	v.h = h
	return v
}

// activate is NdisCmActivateVc with p: it returns what NdisCmActivateVc
// returned and the final status (the completion's, if it pended). A
// signalling VC activated is then opened (OidSignallingOpen), as a call
// manager does once it holds the VC active.
func (cm *testCM) activate(v *tvc, p miniport.VCParams) (returned, final ndis.Status) {
	cm.t.Helper()
	st := cm.b.CmActivateVc(v.h, &ndis.CallParameters{MediaParameters: p.Media()})
	final = st
	if st == ndis.StatusPending {
		final = wait(cm.t, v.act, "ProtocolCmActivateVcComplete of "+v.name)
	}
	if p.Kind == miniport.Signalling && final == ndis.StatusSuccess {
		cm.openSignalling(v)
	}
	return st, final
}

// openSignalling opens an active signalling VC's receive path
// (OidSignallingOpen).
func (cm *testCM) openSignalling(v *tvc) {
	cm.t.Helper()
	req := &ndis.OidRequest{Type: ndis.OidSet, Oid: miniport.OidSignallingOpen}
	if st := cm.b.CoOidRequest(nil, v.h, nil, req); st != ndis.StatusSuccess {
		cm.t.Errorf("OidSignallingOpen on %s: %v", v.name, st)
	}
}

// deactivate is NdisCmDeactivateVc, likewise.
func (cm *testCM) deactivate(v *tvc) (returned, final ndis.Status) {
	cm.t.Helper()
	st := cm.b.CmDeactivateVc(v.h)
	if st != ndis.StatusPending {
		return st, st
	}
	return st, wait(cm.t, v.deact, "ProtocolCmDeactivateVcComplete of "+v.name)
}

// mustActivate activates v and fails the test unless it ends with
// SUCCESS returned as want (SUCCESS or PENDING).
func (cm *testCM) mustActivate(v *tvc, p miniport.VCParams, want ndis.Status) {
	cm.t.Helper()
	ret, fin := cm.activate(v, p)
	if ret != want || fin != ndis.StatusSuccess {
		cm.t.Fatalf("activate %s: returned %v, final %v; want %v then SUCCESS", v.name, ret, fin, want)
	}
}

// teardown deactivates (if active) and deletes v.
func (cm *testCM) teardown(v *tvc, active bool) {
	cm.t.Helper()
	if active {
		if _, fin := cm.deactivate(v); fin != ndis.StatusSuccess {
			cm.t.Fatalf("deactivate %s: %v", v.name, fin)
		}
	}
	if st := cm.b.CoDeleteVc(v.h); st != ndis.StatusSuccess {
		cm.t.Fatalf("NdisCoDeleteVc(%s): %v", v.name, st)
	}
}

// sendAsync sends one list per SDU, chained, numbering them in Context.
func (cm *testCM) sendAsync(v *tvc, sdus ...[]byte) {
	var head, tail *ndis.NetBufferList
	for i, d := range sdus {
		n := &ndis.NetBufferList{Data: d, Context: i}
		if head == nil {
			head = n
		} else {
			tail.Next = n
		}
		tail = n
	}
	cm.b.CoSendNetBufferLists(v.h, head, 0)
}

// sent waits for n send completions on v and returns their statuses in
// the order of the SDUs.
func (cm *testCM) sentStatuses(v *tvc, n int) []ndis.Status {
	cm.t.Helper()
	out := make([]ndis.Status, n)
	for range n {
		d := wait(cm.t, v.sent, "send completion on "+v.name)
		out[d.seq] = d.st
	}
	return out
}

// send sends and waits for the completions.
func (cm *testCM) send(v *tvc, sdus ...[]byte) []ndis.Status {
	cm.t.Helper()
	cm.sendAsync(v, sdus...)
	return cm.sentStatuses(v, len(sdus))
}

// received waits for n SDUs on v.
func (cm *testCM) received(v *tvc, n int) [][]byte {
	cm.t.Helper()
	out := make([][]byte, n)
	for i := range out {
		out[i] = wait(cm.t, v.rx, "receive on "+v.name)
	}
	return out
}

// mediaStatus returns the status indications on VCs so far.
func (cm *testCM) mediaStatus() []string {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return slices.Clone(cm.media)
}

// event waits for the next link event.
func (cm *testCM) event() miniport.LinkEvent {
	cm.t.Helper()
	return wait(cm.t, cm.events, "link event")
}

// oid queries the miniport (NdisCoOidRequest with no AF).
func (cm *testCM) oid(v *tvc, oid ndis.Oid, size int) (*ndis.OidRequest, ndis.Status) {
	req := &ndis.OidRequest{Type: ndis.OidQuery, Oid: oid, InformationBuffer: make([]byte, size)}
	var h *ndis.Vc
	if v != nil {
		h = v.h
	}
	return req, cm.b.CoOidRequest(nil, h, nil, req)
}

// vcStats reads v's counters through OidVcStats.
func (cm *testCM) vcStats(v *tvc) miniport.Stats {
	cm.t.Helper()
	req, st := cm.oid(v, miniport.OidVcStats, 128)
	if st != ndis.StatusSuccess {
		cm.t.Fatalf("OidVcStats: %v", st)
	}
	s, err := miniport.ParseStats(req.InformationBuffer[:req.BytesWritten])
	if err != nil {
		cm.t.Fatal(err)
	}
	return s
}

// wait receives from c, failing the test after 30 s (virtual time under
// synctest).
func wait[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case x := <-c:
		return x
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30 s", what)
		panic("unreachable")
	}
}

// Protocol handlers.

func (cm *testCM) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status { return ndis.StatusSuccess }
func (cm *testCM) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	return ndis.StatusInvalidOid
}
func (cm *testCM) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
	cm.t.Errorf("an OID pended: the miniport answers at once")
}
func (cm *testCM) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {}
func (cm *testCM) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v := vcCtx.(*tvc)
	if cm.gate != nil {
		<-cm.gate
	}
	for n := nbls; n != nil; n = n.Next {
		cm.note("rx %s %d", v.name, len(n.Data))
		v.rx <- append([]byte(nil), n.Data...)
	}
	if flags&ndis.ReceiveFlagsResources == 0 {
		cm.b.ReturnNetBufferLists(nbls, 0)
	}
}
func (cm *testCM) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	v := vcCtx.(*tvc)
	for n := nbls; n != nil; {
		next := n.Next
		cm.note("sent %s %d %v", v.name, n.Context, n.Status)
		v.sent <- sendDone{seq: n.Context.(int), st: n.Status}
		n = next
	}
}
func (cm *testCM) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	if v, ok := vcCtx.(*tvc); ok {
		cm.mu.Lock()
		cm.media = append(cm.media, v.name+" "+ind.StatusCode.String())
		cm.mu.Unlock()
		return
	}
	e, err := miniport.ParseLinkEvent(ind)
	if err != nil {
		cm.t.Errorf("status indication %v: %v", ind.StatusCode, err)
		return
	}
	cm.mu.Lock()
	f := cm.onLink
	cm.mu.Unlock()
	if f != nil {
		f(e)
	}
	cm.events <- e
}

// Call-manager handlers: the test CM registers no AF, so none is called.

func (cm *testCM) ProtocolCmOpenAf(bindingCtx any, af ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmCloseAf(afCtx any) ndis.Status                   { return ndis.StatusNotSupported }
func (cm *testCM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {}
func (cm *testCM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status { return ndis.StatusNotSupported }
func (cm *testCM) ProtocolCmMakeCall(vcCtx any, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, p *ndis.CallParameters) {}
func (cm *testCM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	return ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmAddParty(vcCtx any, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	return nil, ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	return ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmModifyCallQoS(vcCtx any, p *ndis.CallParameters) ndis.Status {
	return ndis.StatusNotSupported
}
func (cm *testCM) ProtocolCmActivateVcComplete(st ndis.Status, vcCtx any, p *ndis.CallParameters) {
	v := vcCtx.(*tvc)
	cm.note("activated %s %v", v.name, st)
	v.act <- st
}
func (cm *testCM) ProtocolCmDeactivateVcComplete(st ndis.Status, vcCtx any) {
	v := vcCtx.(*tvc)
	cm.note("deactivated %s %v", v.name, st)
	v.deact <- st
}

// node is one host of a test: a mediator, the miniport on an Endpoint and
// the test CM bound to it.
type node struct {
	t    testing.TB
	name string
	m    *ndis.Mediator
	mp   *miniport.Miniport
	ep   transport.Endpoint
	cm   *testCM
}

func newNode(t testing.TB, name string, cfg miniport.Config) *node {
	t.Helper()
	m := ndis.New(ndis.Options{Name: name})
	cfg.Name = name + "-nic"
	mp, st := miniport.New(m, cfg)
	if st != ndis.StatusSuccess {
		t.Fatalf("miniport.New: %v", st)
	}
	return &node{t: t, name: name, m: m, mp: mp}
}

// simNode is a node on the sim network.
func simNode(t testing.TB, net *sim.Network, name string, cfg miniport.Config) *node {
	t.Helper()
	n := newNode(t, name, cfg)
	ep, err := net.Endpoint(name, n.mp.Handler())
	if err != nil {
		t.Fatal(err)
	}
	n.ep = ep
	n.mp.Attach(ep)
	n.cm = bindCM(t, n.mp, n.m)
	return n
}

// finish unbinds the CM, halts the miniport and checks that nothing is
// left in the mediator or the miniport and that nothing broke a rule.
func (n *node) finish() {
	n.t.Helper()
	if st := n.cm.b.CloseAdapterEx(); st != ndis.StatusSuccess {
		n.t.Errorf("%s: NdisCloseAdapterEx: %v", n.name, st)
	}
	if vcs := n.mp.Vcs(); vcs != 0 {
		n.t.Errorf("%s: the miniport still holds %d VC(s)", n.name, vcs)
	}
	if st := n.mp.Halt(); st != ndis.StatusSuccess {
		n.t.Errorf("%s: Halt: %v", n.name, st)
	}
	if s := n.m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
		n.t.Errorf("%s: left in the mediator:\n%v", n.name, s)
	}
	for _, v := range n.m.Violations() {
		n.t.Errorf("%s: violation %+v", n.name, v)
	}
}

// sig returns signalling parameters for peer.
func sig(peer string) miniport.VCParams {
	return miniport.VCParams{Kind: miniport.Signalling, Peer: peer}
}

// data returns data-VC parameters for peer and conn with tx and rx.
func data(kind miniport.VCKind, peer string, conn uint32, tx, rx miniport.Traffic) miniport.VCParams {
	return miniport.VCParams{Kind: kind, Peer: peer, ConnID: conn, Transmit: tx, Receive: rx}
}

// q2931 is a message of n octets that looks like Q.2931 (protocol
// discriminator 0x09, call reference length 3) with its index in it.
func q2931(n int, i byte) []byte {
	b := make([]byte, n)
	b[0], b[1], b[5] = 0x09, 0x03, i
	for k := 9; k < n; k++ {
		b[k] = byte(k) ^ i
	}
	return b
}

func sdu(n int, i byte) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(k) + i
	}
	return b
}
