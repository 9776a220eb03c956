package memdrv

import (
	"fmt"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// Result records how one pendable request ended: what the request returned,
// how many times the completion handler ran, and the final status. Tests
// assert on it: a request that returned PENDING must see exactly one
// completion; any other return, none (R-GEN-3, R-GEN-4).
//
// Its fields fit 16 bytes (Completions is an int32 for that): a ClientVc
// holds four, and every call makes two ClientVcs.
type Result struct {
	Returned    ndis.Status // what the NdisXxx call returned
	Status      ndis.Status // final status (from the return or the completion)
	Completions int32       // times the completion handler ran
	Done        bool
}

func (r *Result) returned(st ndis.Status) {
	r.Returned = st
	if st != ndis.StatusPending {
		r.Status, r.Done = st, true
	}
}

func (r *Result) completed(st ndis.Status) {
	r.Completions++
	r.Status, r.Done = st, true
}

// ExactlyOnce reports whether the request finished by exactly one path:
// a final return and no completion, or PENDING and one completion.
func (r *Result) ExactlyOnce() bool {
	if r.Returned == ndis.StatusPending {
		return r.Completions == 1
	}
	return r.Completions == 0 && r.Done
}

func (r Result) String() string {
	return fmt.Sprintf("returned %v, %d completion(s), final %v", r.Returned, r.Completions, r.Status)
}

// Client is a scriptable in-memory CoNDIS client. Its methods issue the
// NdisCl*/NdisCo* requests; its handlers record every indication and
// completion, and answer the contract's obligations on their own: it opens
// the AF it is told about, accepts incoming calls (Accept decides), closes
// calls the network closes (R-CLOSE-14), drops parties the network drops
// (R-PTY-14), tears everything down on notify-close (R-AF-19), and returns
// every received list.
type Client struct {
	Name string
	fab  *Fabric
	b    *ndis.Binding

	mu sync.Mutex
	// Mode is how the client answers incoming calls, notify-close and OIDs.
	mode atomicMode
	// Accept decides the answer to an incoming call; it may modify the
	// parameters (setting CallParametersChanged). Nil accepts.
	Accept func(v *ClientVc, p *ndis.CallParameters) ndis.Status
	// AutoDelete makes the client delete the VCs it created once their call
	// failed or closed.
	AutoDelete bool
	// Echo sends every received packet back on its VC.
	Echo bool
	// CloseLater answers an incoming close from the Loop instead of inside
	// the handler.
	CloseLater bool
	// NoLog turns off the event log and the history of deleted VCs, so a
	// long-running client (a benchmark) keeps nothing it no longer needs.
	NoLog bool
	// RecycleVcs makes the client reuse a deleted VC's record for a later
	// VC (up to maxFreeVcs of them), so that a call allocates none: a
	// benchmark's client, whose calls should cost only what the mediator
	// and the call manager allocate. The caller must not use a *ClientVc
	// once its VC is deleted. Deleted VCs are forgotten, as with NoLog; a
	// multipoint VC's record is not reused (its parties point to it).
	RecycleVcs bool
	// Sap builds the CO_SAP RegisterSap registers for a service name, so
	// the client can drive a call manager with another SAP format (such as
	// q2931.ServiceSap). Nil uses ServiceSap, the in-memory call managers'
	// format. Set it before registering.
	Sap func(service string) *ndis.CoSap

	afs      []*ClientAf
	incoming []*ClientVc
	free     []*ClientVc // deleted VCs' records, with RecycleVcs
	log      []string
	statuses []ndis.Status
}

// ClientAf is the client's context for an AF open.
type ClientAf struct {
	c        *Client
	H        *ndis.Af
	Open     Result
	Close    Result
	Notify   Result
	Notified int
	saps     []*ClientSap
	vcs      []*ClientVc
	teardown bool
	closing  bool // CloseAf issued (set before the call: completions may nest)
}

// ClientSap is the client's context for a SAP.
type ClientSap struct {
	af         *ClientAf
	H          *ndis.Sap
	Service    string
	Register   Result
	Deregister Result
	deregging  bool
}

// ClientVc is the client's context for a VC.
type ClientVc struct {
	c        *Client
	af       *ClientAf
	H        *ndis.Vc
	Incoming bool // created by the call manager
	Deleted  bool // ProtocolCoDeleteVc ran, or the client deleted it

	Make, Close, QoS Result
	Offered          int // ProtocolClIncomingCall
	Answer           Result
	Connected        int // ProtocolClCallConnected
	CloseIndicated   int // ProtocolClIncomingCloseCall
	CloseStatus      ndis.Status
	QoSChanges       int
	Params           *ndis.CallParameters // copy of the offered or negotiated parameters
	params           ndis.CallParameters  // storage for Params
	cmParams         ndis.CallManagerParameters
	Parties          []*ClientParty
	Rx               [][]byte
	SendStatus       []ndis.Status
	multipoint       bool
	closeWanted      bool
	closing          bool // CloseCall issued for the current call
	deleting         bool // the client's own teardown or auto-delete is deleting it (only one of them may)
	sendsOut         int  // lists sent and not yet completed (R-CLOSE-1)
	// gen counts the VCs this record has stood for (RecycleVcs): work
	// posted for one of them is dropped once the record stands for the next.
	gen uint32
}

// ClientParty is the client's context for a party.
type ClientParty struct {
	vc            *ClientVc
	H             *ndis.Party
	Service       string
	Add, Drop     Result
	DropIndicated int
	gone          bool
	dropping      bool
}

// NewClient binds a new client called name to adapter a. It opens the
// Q.2931 address family as soon as it is told about it.
func NewClient(m *ndis.Mediator, name string, a *ndis.Adapter, fab *Fabric) (*Client, ndis.Status) {
	c := &Client{Name: name, fab: fab}
	_, st := m.BindAdapter(a, name, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		return ndis.StatusSuccess
	})
	if st != ndis.StatusSuccess {
		return nil, st
	}
	return c, st
}

// Locked runs f with the client's lock held: the records its handlers
// update (Result fields, counters, Rx, SendStatus, party and SAP records)
// may then be read from any goroutine, race-free, while call managers
// drive the client from their own goroutines. f must not call the client.
func (c *Client) Locked(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// See returns f's result computed under c's lock: a client's handlers run
// on the call managers' goroutines, so code elsewhere reads its records
// (Results, ClientVc fields) through See or Locked.
func See[T any](c *Client, f func() T) T {
	var r T
	c.Locked(func() { r = f() })
	return r
}

// Binding returns the client's binding handle.
func (c *Client) Binding() *ndis.Binding { return c.b }

// SetMode sets how the client answers incoming calls, notify-close and OIDs.
func (c *Client) SetMode(m Mode) { c.mode.set(m) }

func (c *Client) getMode() Mode { return c.mode.get() }

func (c *Client) logf(format string, args ...any) {
	if c.NoLog {
		return
	}
	c.mu.Lock()
	c.logLocked(format, args...)
	c.mu.Unlock()
}

// logLocked is logf for a caller holding c.mu. Callers on every call's path
// test NoLog first, so a client that keeps no log does no formatting work.
func (c *Client) logLocked(format string, args ...any) {
	if !c.NoLog {
		c.log = append(c.log, fmt.Sprintf(format, args...))
	}
}

// Log returns every indication and completion the client saw, in order.
func (c *Client) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// Af returns the client's first AF open, or nil.
func (c *Client) Af() *ClientAf {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.afs) == 0 {
		return nil
	}
	return c.afs[0]
}

// Incoming returns the VCs the call manager created for this client, in order.
func (c *Client) Incoming() []*ClientVc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*ClientVc(nil), c.incoming...)
}

// LastIncoming returns the most recent incoming VC, or nil.
func (c *Client) LastIncoming() *ClientVc {
	in := c.Incoming()
	if len(in) == 0 {
		return nil
	}
	return in[len(in)-1]
}

// StatusIndications returns the status codes of every ProtocolCoStatusEx.
func (c *Client) StatusIndications() []ndis.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ndis.Status(nil), c.statuses...)
}

// --- requests ---

// OpenAf opens the Q.2931 address family (NdisClOpenAddressFamilyEx).
func (c *Client) OpenAf() *ClientAf {
	a := &ClientAf{c: c}
	c.mu.Lock()
	c.afs = append(c.afs, a)
	c.mu.Unlock()
	h, st := c.b.ClOpenAddressFamilyEx(AF, a)
	c.mu.Lock()
	if h != nil {
		a.H = h
	}
	a.Open.returned(st)
	c.mu.Unlock()
	return a
}

// RegisterSap registers service on a (NdisClRegisterSap).
func (c *Client) RegisterSap(a *ClientAf, service string) *ClientSap {
	s := &ClientSap{af: a, Service: service}
	c.mu.Lock()
	a.saps = append(a.saps, s)
	c.mu.Unlock()
	coSap := ServiceSap(service)
	if c.Sap != nil {
		coSap = c.Sap(service)
	}
	h, st := c.b.ClRegisterSap(a.H, s, coSap)
	c.mu.Lock()
	if h != nil {
		s.H = h
	}
	s.Register.returned(st)
	c.mu.Unlock()
	return s
}

// DeregisterSap deregisters s (NdisClDeregisterSap).
func (c *Client) DeregisterSap(s *ClientSap) ndis.Status {
	c.mu.Lock()
	s.deregging = true
	c.mu.Unlock()
	st := c.b.ClDeregisterSap(s.H)
	c.mu.Lock()
	s.Deregister.returned(st)
	c.mu.Unlock()
	return st
}

// CreateVc creates a VC for an outgoing call (NdisCoCreateVc).
func (c *Client) CreateVc(a *ClientAf) (*ClientVc, ndis.Status) {
	c.mu.Lock()
	v := c.newVcLocked(a)
	c.mu.Unlock()
	h, st := c.b.CoCreateVc(a.H, v)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	v.H = h
	c.mu.Lock()
	a.vcs = append(a.vcs, v)
	c.mu.Unlock()
	return v, st
}

// MakeCall calls params' service on v (NdisClMakeCall); multipoint makes it
// a point-to-multipoint call whose first party is returned.
func (c *Client) MakeCall(v *ClientVc, params *ndis.CallParameters, multipoint bool) (*ClientParty, ndis.Status) {
	var p *ClientParty
	var pctx any
	if multipoint {
		svc, _ := serviceOf(params)
		p = &ClientParty{vc: v, Service: svc}
		pctx = p
		c.mu.Lock()
		v.Parties = []*ClientParty{p}
		v.multipoint = true
		c.mu.Unlock()
	}
	c.mu.Lock()
	v.Make = Result{}
	v.Close = Result{}
	v.closing, v.closeWanted = false, false
	c.mu.Unlock()
	h, st := c.b.ClMakeCall(v.H, params, pctx)
	c.mu.Lock()
	v.Make.returned(st)
	if p != nil && h != nil {
		p.H = h
	}
	c.mu.Unlock()
	if st != ndis.StatusPending && st != ndis.StatusSuccess {
		c.afterFailedCall(v)
	}
	return p, st
}

// AddParty adds a leaf calling service to multipoint VC v (NdisClAddParty).
func (c *Client) AddParty(v *ClientVc, params *ndis.CallParameters) (*ClientParty, ndis.Status) {
	svc, _ := serviceOf(params)
	p := &ClientParty{vc: v, Service: svc}
	c.mu.Lock()
	v.Parties = append(v.Parties, p)
	c.mu.Unlock()
	h, st := c.b.ClAddParty(v.H, p, params)
	c.mu.Lock()
	p.Add.returned(st)
	if h != nil {
		p.H = h
	}
	if st != ndis.StatusSuccess && st != ndis.StatusPending {
		p.gone = true
	}
	c.mu.Unlock()
	return p, st
}

// DropParty drops p (NdisClDropParty).
func (c *Client) DropParty(p *ClientParty) ndis.Status {
	c.mu.Lock()
	p.dropping = true
	c.mu.Unlock()
	st := c.b.ClDropParty(p.H, nil)
	c.mu.Lock()
	p.Drop.returned(st)
	if st == ndis.StatusSuccess {
		p.gone = true
	}
	c.mu.Unlock()
	return st
}

// lastParty returns the one live party of a multipoint VC, or nil.
func (v *ClientVc) lastPartyLocked() *ClientParty {
	var last *ClientParty
	for _, p := range v.Parties {
		if !p.gone && p.H != nil {
			last = p
		}
	}
	return last
}

// CloseCall closes the call on v (NdisClCloseCall), passing the last party
// of a multipoint call.
func (c *Client) CloseCall(v *ClientVc) ndis.Status {
	c.mu.Lock()
	party := c.closingLocked(v)
	c.mu.Unlock()
	return c.closeCall(v, party)
}

// closingLocked starts v's close: it resets the close's record and returns
// the party to pass.
func (c *Client) closingLocked(v *ClientVc) *ndis.Party {
	var party *ndis.Party
	if v.multipoint {
		if p := v.lastPartyLocked(); p != nil {
			party = p.H
		}
	}
	v.Close = Result{}
	v.closing = true
	return party
}

// closeCall issues the close closingLocked started.
func (c *Client) closeCall(v *ClientVc, party *ndis.Party) ndis.Status {
	st := c.b.ClCloseCall(v.H, party, nil)
	c.mu.Lock()
	v.Close.returned(st)
	if st != ndis.StatusSuccess {
		c.mu.Unlock()
		return st
	}
	next := c.closedLocked(v)
	c.mu.Unlock()
	c.afterClosed(v, next)
	return st
}

// ModifyQoS asks for new parameters on v's call (NdisClModifyCallQoS).
func (c *Client) ModifyQoS(v *ClientVc, params *ndis.CallParameters) ndis.Status {
	c.mu.Lock()
	v.QoS = Result{}
	c.mu.Unlock()
	st := c.b.ClModifyCallQoS(v.H, params)
	c.mu.Lock()
	v.QoS.returned(st)
	c.mu.Unlock()
	return st
}

// DeleteVc deletes a VC the client created (NdisCoDeleteVc).
func (c *Client) DeleteVc(v *ClientVc) ndis.Status {
	st := c.b.CoDeleteVc(v.H)
	if st == ndis.StatusSuccess {
		c.mu.Lock()
		v.Deleted = true
		c.pruneLocked(v)
		c.mu.Unlock()
	}
	return st
}

// pruneLocked forgets a deleted VC when the client keeps no history, and
// keeps its record for the next VC with RecycleVcs.
func (c *Client) pruneLocked(v *ClientVc) {
	if !c.NoLog && !c.RecycleVcs {
		return
	}
	remove := func(list []*ClientVc) []*ClientVc {
		for i, x := range list {
			if x == v {
				last := len(list) - 1
				list[i] = list[last]
				list[last] = nil
				return list[:last]
			}
		}
		return list
	}
	v.af.vcs = remove(v.af.vcs)
	c.incoming = remove(c.incoming)
	if c.RecycleVcs && len(v.Parties) == 0 {
		*v = ClientVc{gen: v.gen + 1}
		keepFree(&c.free, v)
	}
}

// newVcLocked returns a record for a new VC on a: a deleted VC's, or a new
// one (c.mu held).
func (c *Client) newVcLocked(a *ClientAf) *ClientVc {
	v := takeFree(&c.free)
	if v == nil {
		v = new(ClientVc)
	}
	v.c, v.af = c, a
	return v
}

// postFor runs f on the Loop unless v's record stands for another VC by
// then (RecycleVcs; g is v.gen when f was posted): the VC f was for is
// deleted and needs nothing more.
func (c *Client) postFor(v *ClientVc, g uint32, f func()) {
	c.fab.Post(func() {
		c.mu.Lock()
		same := v.gen == g
		c.mu.Unlock()
		if same {
			f()
		}
	})
}

// Send sends each packet on v as one chain (NdisCoSendNetBufferLists).
func (c *Client) Send(v *ClientVc, packets ...[]byte) {
	var head, tail *ndis.NetBufferList
	for _, p := range packets {
		n := &ndis.NetBufferList{Data: p, Context: v} // counted in v.sendsOut
		if tail == nil {
			head = n
		} else {
			tail.Next = n
		}
		tail = n
	}
	c.mu.Lock()
	v.sendsOut += len(packets)
	c.mu.Unlock()
	c.b.CoSendNetBufferLists(v.H, head, 0)
}

// CloseAf closes a (NdisClCloseAddressFamily).
func (c *Client) CloseAf(a *ClientAf) ndis.Status {
	c.mu.Lock()
	a.closing = true
	c.mu.Unlock()
	st := c.b.ClCloseAddressFamily(a.H)
	c.mu.Lock()
	a.Close.returned(st)
	c.mu.Unlock()
	return st
}

// Unbind closes the client's binding (NdisCloseAdapterEx).
func (c *Client) Unbind() ndis.Status { return c.b.CloseAdapterEx() }

// Rx returns the packets received on v.
func (v *ClientVc) RxData() [][]byte {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return append([][]byte(nil), v.Rx...)
}

func (c *Client) afterFailedCall(v *ClientVc) {
	c.mu.Lock()
	for _, p := range v.Parties {
		p.gone = true
	}
	auto := c.AutoDelete && !v.Incoming
	g, af := v.gen, v.af
	c.mu.Unlock()
	if auto {
		c.postFor(v, g, func() { c.deleteUnlessGone(v) })
	}
	c.progress(af)
}

func (c *Client) afterClose(v *ClientVc) {
	c.mu.Lock()
	next := c.closedLocked(v)
	c.mu.Unlock()
	c.afterClosed(v, next)
}

// closeFollowUp is what is to follow a closed call, as closedLocked read
// it under the client's lock: once that is released the record may stand
// for another VC (RecycleVcs).
type closeFollowUp struct {
	af             *ClientAf
	gen            uint32 // the record's VC (postFor)
	auto, progress bool   // delete the VC; let an AF teardown progress
}

// closedLocked records that v's call closed and says what is to follow:
// whether v is to be deleted, and whether an AF teardown may progress.
func (c *Client) closedLocked(v *ClientVc) closeFollowUp {
	for _, p := range v.Parties {
		p.gone = true
	}
	return closeFollowUp{af: v.af, gen: v.gen, auto: (c.AutoDelete || v.af.teardown) && !v.Incoming, progress: v.af.tearingDownLocked()}
}

// afterClosed follows up v's closed call.
func (c *Client) afterClosed(v *ClientVc, next closeFollowUp) {
	if next.auto {
		c.postFor(v, next.gen, func() {
			c.deleteUnlessGone(v)
			c.progress(next.af)
		})
	}
	if next.progress {
		c.progress(next.af)
	}
}

// deleteUnlessGone deletes v unless it already was: the teardown's progress,
// which runs before the Loop does, may have deleted it first.
func (c *Client) deleteUnlessGone(v *ClientVc) {
	c.mu.Lock()
	claim := !v.Deleted && !v.deleting
	v.deleting = v.deleting || claim
	c.mu.Unlock()
	if claim && c.DeleteVc(v) != ndis.StatusSuccess {
		c.mu.Lock()
		v.deleting = false
		c.mu.Unlock()
	}
}

// --- handlers ---

// ProtocolCoAfRegisterNotify opens the address family if it is Q.2931.
func (c *Client) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	c.logf("AfRegisterNotify(%v)", af.AddressFamily)
	if af.AddressFamily == AF.AddressFamily {
		c.OpenAf()
	}
}

// ProtocolCoCreateVc takes a VC the call manager created for an incoming call.
func (c *Client) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	a := afCtx.(*ClientAf)
	c.mu.Lock()
	v := c.newVcLocked(a)
	v.H, v.Incoming = vc, true
	c.incoming = append(c.incoming, v)
	a.vcs = append(a.vcs, v)
	c.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc forgets a VC.
func (c *Client) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.Deleted = true
	c.pruneLocked(v)
	c.mu.Unlock()
	return ndis.StatusSuccess
}

// ProtocolCoOidRequest accepts OID_CO_ADDRESS_CHANGE and OID_CO_AF_CLOSE.
func (c *Client) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	a := afCtx.(*ClientAf)
	switch req.Oid {
	case ndis.OidCoAddressChange, ndis.OidCoSignalingEnabled, ndis.OidCoSignalingDisabled:
	case ndis.OidCoAfClose:
		c.fab.Post(func() { c.startTeardown(a) })
	default:
		return ndis.StatusNotSupported
	}
	c.logf("OidRequest(%#x)", uint32(req.Oid))
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) { done(ndis.StatusSuccess) },
		func(st ndis.Status) { c.b.CoOidRequestComplete(a.H, nil, nil, req, st) })
}

// ProtocolCoOidRequestComplete records the completion of a request the client made.
func (c *Client) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
	c.logf("OidRequestComplete(%#x, %v)", uint32(req.Oid), st)
}

// ProtocolCoReceiveNetBufferLists records received data and returns the lists.
func (c *Client) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v := vcCtx.(*ClientVc)
	var echo [][]byte
	c.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		d := append([]byte(nil), n.Data...)
		v.Rx = append(v.Rx, d)
		echo = append(echo, d)
	}
	doEcho := c.Echo
	c.mu.Unlock()
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
	if doEcho {
		c.Send(v, echo...)
	}
}

// ProtocolCoSendNetBufferListsComplete records each list's status.
func (c *Client) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	v, _ := vcCtx.(*ClientVc)
	if v == nil {
		return
	}
	c.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		v.SendStatus = append(v.SendStatus, n.Status)
		if n.Context == v {
			v.sendsOut--
		}
	}
	resume := v.sendsOut == 0 && v.closeWanted && !v.closing
	c.mu.Unlock()
	if resume {
		c.closeWhenReady(v) // the close waited for these sends (R-CLOSE-1)
	}
}

// ProtocolCoStatusEx records status indications.
func (c *Client) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	c.mu.Lock()
	c.statuses = append(c.statuses, ind.StatusCode)
	c.mu.Unlock()
}

// ProtocolClOpenAfCompleteEx records a pended open's outcome.
func (c *Client) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	a := afCtx.(*ClientAf)
	c.mu.Lock()
	if af != nil {
		a.H = af
	}
	a.Open.completed(st)
	c.mu.Unlock()
	c.logf("OpenAfComplete(%v)", st)
}

// ProtocolClCloseAfComplete records a pended close's outcome.
func (c *Client) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) {
	a := afCtx.(*ClientAf)
	c.mu.Lock()
	a.Close.completed(st)
	c.mu.Unlock()
	c.logf("CloseAfComplete(%v)", st)
	c.progress(a)
}

// ProtocolClNotifyCloseAf tears everything down on the AF and closes it
// (R-AF-19) without blocking (R-AF-22).
func (c *Client) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	a := afCtx.(*ClientAf)
	c.mu.Lock()
	a.Notified++
	c.mu.Unlock()
	c.logf("NotifyCloseAf")
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) {
		c.mu.Lock()
		a.Notify.completed(st)
		c.mu.Unlock()
		c.b.ClNotifyCloseAddressFamilyComplete(a.H, st)
	})
	c.mu.Lock()
	a.Notify.returned(st)
	c.mu.Unlock()
	c.fab.Post(func() { c.startTeardown(a) })
	return st
}

// startTeardown begins closing everything on a, then a itself.
func (c *Client) startTeardown(a *ClientAf) {
	c.mu.Lock()
	a.teardown = true
	c.mu.Unlock()
	c.progress(a)
}

// progress advances an AF teardown by one round: drop parties down to one,
// close calls, delete own VCs, deregister SAPs, then close the AF (R-AF-19).
func (c *Client) progress(a *ClientAf) {
	if a == nil {
		return
	}
	c.mu.Lock()
	if !a.tearingDownLocked() {
		c.mu.Unlock()
		return
	}
	vcs := append([]*ClientVc(nil), a.vcs...)
	saps := append([]*ClientSap(nil), a.saps...)
	c.mu.Unlock()
	busy := false
	for _, v := range vcs {
		c.mu.Lock()
		deleted, inCall, another := v.Deleted, v.callLiveLocked(), v.deleting
		// Claim the deletion: progress runs from several goroutines (a
		// completion on one, a close on another), and only one may delete;
		// the others wait for it (busy), and the one that deleted goes on.
		del := !deleted && !another && !inCall && !v.Incoming
		v.deleting = v.deleting || del
		c.mu.Unlock()
		if deleted {
			continue
		}
		if another {
			busy = true
			continue
		}
		if inCall {
			busy = true
			c.closeWhenReady(v)
			continue
		}
		if del && c.DeleteVc(v) != ndis.StatusSuccess {
			c.mu.Lock()
			v.deleting = false
			c.mu.Unlock()
			busy = true
		}
	}
	for _, s := range saps {
		c.mu.Lock()
		issue := s.H != nil && s.Register.Status == ndis.StatusSuccess && !s.deregging
		c.mu.Unlock()
		if issue {
			c.DeregisterSap(s)
		}
		c.mu.Lock()
		if (s.deregging && !s.Deregister.Done) || !s.Register.Done {
			busy = true
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	if a.closing {
		busy = true // a nested completion got there first
	}
	c.mu.Unlock()
	if busy {
		return
	}
	c.CloseAf(a)
}

// tearingDownLocked reports whether progress has work on a: its teardown
// is under way and its close not issued yet.
func (a *ClientAf) tearingDownLocked() bool {
	return a != nil && a.teardown && !a.closing && a.H != nil
}

// callLiveLocked: the client still has a call to close on v.
func (v *ClientVc) callLiveLocked() bool {
	if v.closing && !v.Close.Done {
		return true // closing
	}
	if v.Close.Done && v.Close.Status == ndis.StatusSuccess {
		return false
	}
	if v.Incoming {
		return v.Answer.Status == ndis.StatusSuccess && v.Offered > 0 && !v.Close.Done
	}
	return v.Make.Done && v.Make.Status == ndis.StatusSuccess || v.Make.Returned == ndis.StatusPending && !v.Make.Done
}

// closeWhenReady drops parties down to one and closes the call once that is
// done (R-CLOSE-14, R-PTY-17).
func (c *Client) closeWhenReady(v *ClientVc) {
	c.mu.Lock()
	c.closeWhenReadyLocked(v)
}

// closeWhenReadyLocked is closeWhenReady for a caller holding c.mu, which
// it releases.
func (c *Client) closeWhenReadyLocked(v *ClientVc) {
	v.closeWanted = true
	if v.closing || (v.Make.Returned == ndis.StatusPending && !v.Make.Done) || v.sendsOut > 0 {
		c.mu.Unlock()
		return // already closing, the setup has not finished, or sends are out (R-CLOSE-1)
	}
	if len(v.Parties) == 0 { // point to point: nothing to drop first
		party := c.closingLocked(v)
		c.mu.Unlock()
		c.closeCall(v, party)
		return
	}
	var drop []*ClientParty
	pendingDrops, adding := 0, 0
	live := 0
	for _, p := range v.Parties {
		switch {
		case p.gone:
		case p.H == nil || (p.Add.Returned == ndis.StatusPending && !p.Add.Done):
			adding++
		case p.dropping && !p.Drop.Done:
			pendingDrops++
		default:
			live++
			drop = append(drop, p)
		}
	}
	c.mu.Unlock()
	if adding > 0 {
		return // an AddParty completion will call back here
	}
	if len(drop) > 1 {
		for _, p := range drop[1:] {
			c.mu.Lock()
			taken := p.gone || p.dropping // by a nested closeWhenReady (a completion or teardown progress)
			c.mu.Unlock()
			if !taken {
				c.DropParty(p)
			}
		}
		c.mu.Lock()
		pendingDrops = 0
		for _, p := range v.Parties {
			if !p.gone && p.dropping && !p.Drop.Done {
				pendingDrops++
			}
		}
		closed := v.closing // a drop completion delivered inside DropParty closed it already
		c.mu.Unlock()
		if closed {
			return
		}
	}
	if pendingDrops > 0 {
		return
	}
	c.CloseCall(v)
}

// ProtocolClRegisterSapComplete records a pended registration's outcome.
func (c *Client) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	s := sapCtx.(*ClientSap)
	c.mu.Lock()
	if sap != nil {
		s.H = sap
	}
	s.Register.completed(st)
	c.mu.Unlock()
	c.logf("RegisterSapComplete(%s, %v)", s.Service, st)
	c.progress(s.af)
}

// ProtocolClDeregisterSapComplete records a deregistration's outcome.
func (c *Client) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	s := sapCtx.(*ClientSap)
	c.mu.Lock()
	s.Deregister.completed(st)
	c.mu.Unlock()
	c.logf("DeregisterSapComplete(%s, %v)", s.Service, st)
	c.progress(s.af)
}

// ProtocolClMakeCallComplete records a pended call's outcome.
func (c *Client) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, params *ndis.CallParameters) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.Make.completed(st)
	if party != nil && len(v.Parties) > 0 {
		v.Parties[0].H = party
	}
	if st == ndis.StatusSuccess {
		v.Params = params.Clone()
	}
	wanted := v.closeWanted
	c.mu.Unlock()
	c.logf("MakeCallComplete(%v)", st)
	if st != ndis.StatusSuccess {
		c.afterFailedCall(v)
		return
	}
	if wanted {
		c.closeWhenReady(v)
	}
}

// ProtocolClModifyCallQoSComplete records a pended QoS change's outcome.
func (c *Client) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.QoS.completed(st)
	c.mu.Unlock()
	c.logf("ModifyCallQoSComplete(%v)", st)
}

// ProtocolClCloseCallComplete records a pended close's outcome.
func (c *Client) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.Close.completed(st)
	c.mu.Unlock()
	c.logf("CloseCallComplete(%v)", st)
	if st == ndis.StatusSuccess {
		c.afterClose(v)
	}
}

// ProtocolClAddPartyComplete records a pended add's outcome.
func (c *Client) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, params *ndis.CallParameters) {
	p := partyCtx.(*ClientParty)
	c.mu.Lock()
	p.Add.completed(st)
	if party != nil {
		p.H = party
	} else {
		p.gone = true
	}
	wanted := p.vc.closeWanted
	c.mu.Unlock()
	c.logf("AddPartyComplete(%s, %v)", p.Service, st)
	if wanted {
		c.closeWhenReady(p.vc)
	}
}

// ProtocolClDropPartyComplete records a pended drop's outcome.
func (c *Client) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {
	p := partyCtx.(*ClientParty)
	c.mu.Lock()
	p.Drop.completed(st)
	if st == ndis.StatusSuccess {
		p.gone = true
	}
	wanted := p.vc.closeWanted
	c.mu.Unlock()
	c.logf("DropPartyComplete(%s, %v)", p.Service, st)
	if wanted {
		c.closeWhenReady(p.vc)
	}
}

// ProtocolClIncomingCall answers an offered call with Accept's verdict, at
// once or pended according to the client's mode.
func (c *Client) ProtocolClIncomingCall(sapCtx, vcCtx any, params *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.Offered++
	v.Answer = Result{}
	v.Close = Result{}
	// A call manager may reuse its VC for another call: the last one's
	// close is over.
	v.closing, v.closeWanted = false, false
	v.keepParams(params) // R-IN-10: the buffer is the CM's
	verdict := ndis.StatusSuccess
	if accept := c.Accept; accept != nil {
		c.mu.Unlock()
		verdict = accept(v, params)
		c.mu.Lock()
	}
	if !c.NoLog {
		c.logLocked("IncomingCall -> %v", verdict)
	}
	// The verdict is known inside the handler: respond's rules for an
	// outcome known at once, without its record.
	switch c.getMode() {
	case Immediate:
		v.Answer.returned(verdict)
		c.mu.Unlock()
		return verdict
	case Pend:
		v.Answer.returned(ndis.StatusPending)
		g := v.gen
		c.mu.Unlock()
		c.postFor(v, g, func() { c.answerComplete(v, verdict, params) })
	default: // PendEarly: complete inside the handler, then return PENDING
		c.mu.Unlock()
		c.answerComplete(v, verdict, params)
		c.mu.Lock()
		v.Answer.returned(ndis.StatusPending)
		c.mu.Unlock()
	}
	return ndis.StatusPending
}

// answerComplete completes a pended answer (NdisClIncomingCallComplete).
func (c *Client) answerComplete(v *ClientVc, st ndis.Status, params *ndis.CallParameters) {
	c.mu.Lock()
	v.Answer.completed(st)
	c.mu.Unlock()
	c.b.ClIncomingCallComplete(st, v.H, params)
}

// keepParams copies what the client keeps of offered parameters: flags and
// flowspecs. The AF-specific blob is not kept (it stays the CM's).
func (v *ClientVc) keepParams(p *ndis.CallParameters) {
	if p == nil {
		v.Params = nil
		return
	}
	v.params = ndis.CallParameters{Flags: p.Flags}
	if p.CallMgrParameters != nil {
		v.cmParams = ndis.CallManagerParameters{Transmit: p.CallMgrParameters.Transmit, Receive: p.CallMgrParameters.Receive}
		v.params.CallMgrParameters = &v.cmParams
	}
	v.Params = &v.params
}

// ProtocolClCallConnected records that an incoming call is up.
func (c *Client) ProtocolClCallConnected(vcCtx any) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.Connected++
	c.logLocked("CallConnected")
	c.mu.Unlock()
}

// ProtocolClIncomingCloseCall answers with NdisClCloseCall (R-CLOSE-14),
// after dropping parties down to one; inside the handler, or from the Loop
// with CloseLater.
func (c *Client) ProtocolClIncomingCloseCall(closeStatus ndis.Status, vcCtx any, data []byte) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.CloseIndicated++
	v.CloseStatus = closeStatus
	if !c.NoLog {
		c.logLocked("IncomingCloseCall(%v)", closeStatus)
	}
	if c.CloseLater {
		g := v.gen
		c.mu.Unlock()
		c.postFor(v, g, func() { c.closeWhenReady(v) })
		return
	}
	c.closeWhenReadyLocked(v)
}

// ProtocolClIncomingDropParty answers with NdisClDropParty (R-PTY-14).
func (c *Client) ProtocolClIncomingDropParty(dropStatus ndis.Status, partyCtx any, data []byte) {
	p := partyCtx.(*ClientParty)
	c.mu.Lock()
	p.DropIndicated++
	c.mu.Unlock()
	c.logf("IncomingDropParty(%s, %v)", p.Service, dropStatus)
	c.DropParty(p)
}

// ProtocolClIncomingCallQoSChange accepts a remote QoS change by returning.
func (c *Client) ProtocolClIncomingCallQoSChange(vcCtx any, params *ndis.CallParameters) {
	v := vcCtx.(*ClientVc)
	c.mu.Lock()
	v.QoSChanges++
	v.Params = params.Clone()
	c.mu.Unlock()
	c.logf("IncomingCallQoSChange")
}
