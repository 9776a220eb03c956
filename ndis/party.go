package ndis

// partyState is spec §5.2.
//
//	ADDING --ok--> CONNECTED --IncomingDropParty--> DROP_INDICATED
//	ADDING --fail--> DEAD     CONNECTED/DROP_INDICATED --ClDropParty--> DROPPING --ok--> DEAD (fail: back)
//	CONNECTED (last) --ClCloseCall--> CLOSING --ok--> DEAD (fail: back)
type partyState uint8

const (
	partyAdding partyState = iota + 1
	partyConnected
	partyDropIndicated
	partyDropping
	partyClosing
	partyDead
)

func (s partyState) String() string {
	return [...]string{"?", "ADDING", "CONNECTED", "DROP_INDICATED", "DROPPING", "CLOSING", "DEAD"}[s]
}

// Party is one leaf of a point-to-multipoint call (NdisPartyHandle). Its
// state is guarded by its VC's lock (vc.mu).
type Party struct {
	m         *Mediator
	id        uint64
	vc        *Vc
	clientCtx any
	cmCtx     any
	state     partyState
	prev      partyState // restored if a drop or close fails
	add       opRec
	drop      opRec
}

// String names the party for traces ("party#9").
func (p *Party) String() string { return idName("party#", p.id) }

// Vc returns the VC the party belongs to.
func (p *Party) Vc() *Vc { return p.vc }

// otherLiveParties counts the parties of p's VC, other than p, that are
// still connected (including those whose drop was indicated).
func (p *Party) otherLiveParties() int {
	n := 0
	for _, q := range p.vc.partyList() {
		if q != p && (q.state == partyConnected || q.state == partyDropIndicated) {
			n++
		}
	}
	return n
}

// ClAddParty models NdisClAddParty: add a leaf to an established multipoint
// call. Refused with StatusFailure on a VC whose call was not made
// multipoint (R-PTY-1) or is not connected (R-PTY-7). It returns the party
// handle, valid once the add succeeded (R-PTY-7).
func (b *Binding) ClAddParty(vc *Vc, partyCtx any, params *CallParameters) (*Party, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisClAddParty"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := b.lockClientVc(vc); rule != "" {
		return nil, m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if !vc.multipoint {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-PTY-1", fn, b, vc, "the call on this VC is point-to-point")
	}
	if vc.call != callConnected {
		call := vc.call
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-PTY-7", fn, b, vc, "call is %v; parties are added to an established call", call)
	}
	if partyCtx == nil {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-PTY-2", fn, b, vc, "the client's party context must be allocated before the call")
	}
	if params == nil {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-PTY-2", fn, b, vc, "nil call parameters")
	}
	p := &Party{m: m, id: m.newID(), vc: vc, clientCtx: partyCtx, state: partyAdding}
	x := vc.extra()
	x.parties = append(x.parties, p)
	vc.shard().parties.Add(1)
	p.add.state = opUpcall
	cm, owner, cmCtx := vc.cm(), vc.cmOwner(), vc.cmCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmAddParty", p, 0)
	cmPartyCtx, st := cm.ProtocolCmAddParty(cmCtx, params, p)
	m.emit(EventHandled, owner, "ProtocolCmAddParty", p, st)

	vc.mu.Lock()
	final, fctx, fparams, finish, deliver := p.add.settle(m, st, cmPartyCtx, params, "ProtocolCmAddParty", owner, p)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, p, StatusPending)
		return p, StatusPending
	}
	h := m.finishAddPartyLocked(p, final, fctx, owner)
	vc.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClAddPartyComplete", p, final)
		b.client.ProtocolClAddPartyComplete(final, partyCtx, h, fparams)
		final, h = StatusPending, p
	}
	m.emit(EventReturn, b, fn, p, final)
	return h, final
}

func (m *Mediator) finishAddPartyLocked(p *Party, st Status, cmCtx any, owner driver) *Party {
	if st == StatusSuccess {
		if cmCtx == nil {
			m.warn("R-PTY-4", "AddParty completion", owner, p, "a successful add must supply the call manager's party context")
		}
		p.state, p.cmCtx = partyConnected, cmCtx
		p.vc.more.partiesAdded++ // p is on the VC's list, in v.more
		return p
	}
	p.state = partyDead
	p.vc.removePartyLocked(p)
	return nil
}

// removePartyLocked takes p off v's parties (v.mu held).
func (v *Vc) removePartyLocked(p *Party) {
	ps := v.partyList()
	for i, q := range ps {
		if q == p {
			v.more.parties = append(ps[:i], ps[i+1:]...)
			v.shard().parties.Add(-1)
			return
		}
	}
}

// lockCmParty validates a call manager's use of a party handle; if it is
// usable it returns with p.vc.mu held (see lockCmVc).
func (m *Mediator) lockCmParty(who driver, p *Party) (string, string) {
	if p == nil {
		return "R-GEN-8", "nil party handle"
	}
	if p.m != m || p.vc == nil {
		return "R-GEN-8", foreignHandle
	}
	return m.lockCmVc(who, p.vc)
}

// CmAddPartyComplete models NdisCmAddPartyComplete.
func (b *Binding) CmAddPartyComplete(status Status, party *Party, cmPartyCtx any, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.addPartyComplete(b, "NdisCmAddPartyComplete", status, party, cmPartyCtx, params)
}

// MCmAddPartyComplete models NdisMCmAddPartyComplete.
func (a *Adapter) MCmAddPartyComplete(status Status, party *Party, cmPartyCtx any, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.addPartyComplete(a, "NdisMCmAddPartyComplete", status, party, cmPartyCtx, params)
}

func (m *Mediator) addPartyComplete(who driver, fn string, st Status, p *Party, cmCtx any, params *CallParameters) Status {
	if ret, ok := m.startCompletion(who, fn, p, st); !ok {
		return ret
	}
	if rule, why := m.lockCmParty(who, p); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, p, "%s", why)
	}
	vc := p.vc
	switch m.takeCompletionLocked(&p.add, st, cmCtx, params) {
	case completeNone:
		vc.mu.Unlock()
		return m.refuseDoubleCompletion(fn, who, p, "ProtocolCmAddParty")
	case completeParked:
		vc.mu.Unlock()
		return StatusSuccess
	}
	h := m.finishAddPartyLocked(p, st, cmCtx, who)
	c := vc.client()
	vc.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClAddPartyComplete", p, st)
	c.client.ProtocolClAddPartyComplete(st, p.clientCtx, h, params)
	return StatusSuccess
}

// ClDropParty models NdisClDropParty: drop one leaf of a multipoint call.
// The party handle is dead for the client from this call on (R-PTY-9). The
// last party cannot be dropped; it goes with NdisClCloseCall (R-PTY-10,
// StatusFailure).
func (b *Binding) ClDropParty(party *Party, closeData []byte) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClDropParty"
	m.emit(EventRequest, b, fn, party, 0)
	if party == nil || party.m != m || party.vc == nil || party.vc.client() != b {
		return m.reject(StatusFailure, "R-GEN-8", fn, b, party, "not a party of this client")
	}
	vc := party.vc
	vc.mu.Lock()
	switch s := party.state; s {
	case partyConnected, partyDropIndicated:
	case partyAdding:
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-PTY-7", fn, b, party, "the add has not completed; the party handle is not valid yet")
	default:
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-PTY-9", fn, b, party, "party handle is no longer valid (%v)", s)
	}
	if party.otherLiveParties() == 0 {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-PTY-10", fn, b, party, "this is the last party; close the call with NdisClCloseCall")
	}
	party.prev, party.state = party.state, partyDropping
	party.drop.state = opUpcall
	cm, owner, cmCtx := vc.cm(), vc.cmOwner(), party.cmCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmDropParty", party, 0)
	st := cm.ProtocolCmDropParty(cmCtx, closeData)
	m.emit(EventHandled, owner, "ProtocolCmDropParty", party, st)

	vc.mu.Lock()
	final, _, _, finish, deliver := party.drop.settle(m, st, nil, nil, "ProtocolCmDropParty", owner, party)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, party, StatusPending)
		return StatusPending
	}
	m.finishDropPartyLocked(party, final)
	vc.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClDropPartyComplete", party, final)
		b.client.ProtocolClDropPartyComplete(final, party.clientCtx)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, party, final)
	return final
}

func (m *Mediator) finishDropPartyLocked(p *Party, st Status) {
	if st == StatusSuccess {
		p.state = partyDead
		p.vc.removePartyLocked(p)
		p.vc.more.partiesDropped++
		return
	}
	p.state = p.prev
}

// CmDropPartyComplete models NdisCmDropPartyComplete.
func (b *Binding) CmDropPartyComplete(status Status, party *Party) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dropPartyComplete(b, "NdisCmDropPartyComplete", status, party)
}

// MCmDropPartyComplete models NdisMCmDropPartyComplete.
func (a *Adapter) MCmDropPartyComplete(status Status, party *Party) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dropPartyComplete(a, "NdisMCmDropPartyComplete", status, party)
}

func (m *Mediator) dropPartyComplete(who driver, fn string, st Status, p *Party) Status {
	if ret, ok := m.startCompletion(who, fn, p, st); !ok {
		return ret
	}
	if rule, why := m.lockCmParty(who, p); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, p, "%s", why)
	}
	vc := p.vc
	switch m.takeCompletionLocked(&p.drop, st, nil, nil) {
	case completeNone:
		vc.mu.Unlock()
		return m.refuseDoubleCompletion(fn, who, p, "ProtocolCmDropParty")
	case completeParked:
		vc.mu.Unlock()
		return StatusSuccess
	}
	m.finishDropPartyLocked(p, st)
	c := vc.client()
	vc.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClDropPartyComplete", p, st)
	c.client.ProtocolClDropPartyComplete(st, p.clientCtx)
	return StatusSuccess
}

// CmDispatchIncomingDropParty models NdisCmDispatchIncomingDropParty: a leaf
// left while other leaves remain. It may only name a connected party whose
// VC keeps other connected parties (R-PTY-15); the last leaf leaving is an
// incoming close instead (R-CLOSE-18). A party the client is already
// dropping gets no indication (design.md §2: one notification per party):
// the call returns NDIS_STATUS_CLOSING and that is not a violation.
func (b *Binding) CmDispatchIncomingDropParty(dropStatus Status, party *Party, closeData []byte) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dispatchIncomingDropParty(b, "NdisCmDispatchIncomingDropParty", dropStatus, party, closeData)
}

// MCmDispatchIncomingDropParty models NdisMCmDispatchIncomingDropParty.
func (a *Adapter) MCmDispatchIncomingDropParty(dropStatus Status, party *Party, closeData []byte) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dispatchIncomingDropParty(a, "NdisMCmDispatchIncomingDropParty", dropStatus, party, closeData)
}

func (m *Mediator) dispatchIncomingDropParty(who driver, fn string, st Status, p *Party, data []byte) Status {
	m.emit(EventRequest, who, fn, p, st)
	if rule, why := m.lockCmParty(who, p); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, p, "%s", why)
	}
	vc := p.vc
	switch s := p.state; s {
	case partyConnected:
	case partyDropping, partyClosing:
		// Crossing drop: the client is already dropping this party (or
		// closing the call with it). One completion, no indication
		// (design.md §2); the call manager could not have known.
		vc.mu.Unlock()
		m.emit(EventReturn, who, fn, p, StatusClosing)
		return StatusClosing
	default:
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-PTY-15", fn, who, p, "party is %v, not connected", s)
	}
	if p.otherLiveParties() == 0 {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-CLOSE-18", fn, who, p, "the last party leaving is an incoming close call, not an incoming drop party")
	}
	p.state = partyDropIndicated
	c := vc.client()
	vc.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClIncomingDropParty", p, st)
	c.client.ProtocolClIncomingDropParty(st, p.clientCtx, data)
	m.emit(EventReturn, who, fn, p, StatusSuccess)
	return StatusSuccess
}
