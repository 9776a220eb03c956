package miniport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/condis-project/condis/internal/shaping"
	"github.com/condis-project/condis/internal/statewait"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// Defaults of Config.
const (
	DefaultMaxShapingDelay   = 100 * time.Millisecond
	DefaultPolicingTolerance = time.Millisecond
	DefaultMaxHeldSignalling = 64
	DefaultDialTimeout       = 10 * time.Second
	DefaultLinkSpeed         = 1_000_000_000 // bits/s
)

// Config configures a Miniport. Zero values take the defaults.
type Config struct {
	// Name is the adapter's name in the mediator.
	Name string
	// MaxShapingDelay bounds how long a send is held back to conform to
	// its VC's transmit traffic; a send that would wait longer is dropped
	// and completed with NDIS_STATUS_RESOURCES.
	MaxShapingDelay time.Duration
	// PolicingTolerance is how far ahead of its VC's receive traffic an
	// SDU may arrive and still conform (a GCRA's τ: network jitter bunches
	// SDUs the sender spaced out).
	PolicingTolerance time.Duration
	// MaxHeldSignalling bounds the signalling messages held per peer
	// while no signalling VC of that peer is active; further ones are
	// dropped and counted (Stats.SignallingDropped).
	MaxHeldSignalling int
	// DialTimeout bounds the dial of a pended activation.
	DialTimeout time.Duration
	// LinkSpeed is the nominal speed OID_GEN_CO_LINK_SPEED reports, in
	// bits/s, both ways: what the medium is sold as, for a call manager's
	// admission control. The transport measures none.
	LinkSpeed uint64
	// Pend makes the miniport pend every activation, re-activation and
	// deactivation it would otherwise complete at once, as a NIC that
	// programs its hardware asynchronously does: MiniportCoActivateVc and
	// MiniportCoDeactivateVc return NDIS_STATUS_PENDING and complete from
	// another goroutine (NdisMCoActivateVcComplete,
	// NdisMCoDeactivateVcComplete). A call manager must work either way.
	Pend bool
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "miniport"
	}
	if c.MaxShapingDelay <= 0 {
		c.MaxShapingDelay = DefaultMaxShapingDelay
	}
	if c.PolicingTolerance <= 0 {
		c.PolicingTolerance = DefaultPolicingTolerance
	}
	if c.MaxHeldSignalling <= 0 {
		c.MaxHeldSignalling = DefaultMaxHeldSignalling
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.LinkSpeed == 0 {
		c.LinkSpeed = DefaultLinkSpeed
	}
}

// Miniport is a CoNDIS miniport without call management whose medium is a
// transport.Endpoint. See the package documentation for the contract.
type Miniport struct {
	cfg     Config
	adapter *ndis.Adapter
	ctx     context.Context // cancelled by Close: ends dials
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the miniport started

	mu     sync.Mutex
	ep     transport.Endpoint
	closed bool
	peers  map[string]*peer
	vcs    map[*vc]struct{}
	vcSeq  uint64
	stats  AdapterStats
}

// vcState is a VC's state in the miniport. The zero value is not a state.
//
//	idle --activate--> activating --path up--> active
//	  ^                    |                   |  ^ reactivate (stays active)
//	  |<---dial failed-----+                   |  |
//	  |<--------drained---- deactivating <-----+--+
type vcState uint8

const (
	vcIdle         vcState = iota + 1 // created or deactivated: no path
	vcActivating                      // MiniportCoActivateVc pended: the path is opening
	vcActive                          // carries SDUs
	vcDeactivating                    // MiniportCoDeactivateVc pended: sends draining
)

func (s vcState) String() string {
	switch s {
	case vcIdle:
		return "idle"
	case vcActivating:
		return "activating"
	case vcActive:
		return "active"
	case vcDeactivating:
		return "deactivating"
	}
	return "vcState(?)"
}

// vc is the miniport's per-VC context (MiniportCoCreateVc). Guarded by
// Miniport.mu.
type vc struct {
	mp    *Miniport
	h     *ndis.Vc
	seq   uint64 // creation order, for a stable order of indications
	state vcState
	// why is the reason of the last transition, for people reading a dump.
	why string

	p    VCParams // in force while activating, active or deactivating
	peer *peer    // the peer p.Peer, while bound (activating..deactivating); nil for a Root
	legs []*peer  // a Root's leaf nodes, as p.Legs lists them
	// rxReady: the mediator has the VC active (its activation completed),
	// so receives may be indicated on it.
	rxReady bool
	// A pended re-activation: the parameters it will put in force and the
	// call manager's buffer to complete it with.
	reopen   *VCParams
	actParam *ndis.CallParameters

	txRates, rxRates shaping.Rates
	txB, rxB         shaping.Buckets

	q        []queued // shaped or reliable sends waiting for the worker
	worker   bool
	kick     chan struct{} // wakes the worker early (made with it)
	inflight int           // sends taken and not yet completed
	rxBusy   int           // indications in progress

	st Stats
}

type queued struct {
	n  *ndis.NetBufferList
	at time.Time
}

// setStateLocked is the one place a VC changes state.
func (v *vc) setStateLocked(s vcState, why string) {
	v.state, v.why = s, why
}

// New attaches a new miniport to m (NdisMRegisterMiniportDriver and
// MiniportInitializeEx, as ndis.Mediator.AddMiniport models them). It has
// no medium until Attach; give the transport Handler() when making the
// Endpoint.
func New(m *ndis.Mediator, cfg Config) (*Miniport, ndis.Status) {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	mp := &Miniport{cfg: cfg, ctx: ctx, cancel: cancel, peers: map[string]*peer{}, vcs: map[*vc]struct{}{}}
	a, st := m.AddMiniport(cfg.Name, mp, mp, nil)
	if st != ndis.StatusSuccess {
		cancel()
		return nil, st
	}
	mp.adapter = a
	return mp, ndis.StatusSuccess
}

// Adapter returns the miniport's adapter handle, to bind protocols to.
func (mp *Miniport) Adapter() *ndis.Adapter { return mp.adapter }

// Handler returns the transport.Handler to make the Endpoint with: the
// miniport accepts every link the Endpoint makes or accepts.
func (mp *Miniport) Handler() transport.Handler { return transport.HandlerFunc(mp.linkUp) }

// Attach gives the miniport its medium: activations that need a link
// dial through ep. Close closes ep.
func (mp *Miniport) Attach(ep transport.Endpoint) {
	mp.mu.Lock()
	mp.ep = ep
	mp.mu.Unlock()
}

// Close takes the medium away: the Endpoint is closed (every link goes
// down and is indicated so), pended activations complete with
// NDIS_STATUS_CLOSING, sends waiting to be shaped complete with
// NDIS_STATUS_FAILURE, pended deactivations complete once their sends
// have, and every goroutine of the miniport has ended when Close returns.
// Later activations are refused with NDIS_STATUS_CLOSING, OID requests
// with NDIS_STATUS_NOT_ACCEPTED (R-OID-7). Close must not be called from a
// handler the miniport called. It is idempotent.
func (mp *Miniport) Close() {
	mp.mu.Lock()
	already := mp.closed
	mp.closed = true
	ep := mp.ep
	for _, pr := range mp.peers {
		pr.room.Broadcast() // readers waiting for room drop, so the endpoint can close
	}
	mp.mu.Unlock()
	mp.cancel()
	if !already && ep != nil {
		ep.Close()
	}
	mp.flushAll(ndis.StatusFailure)
	mp.wg.Wait()
}

// HaltUnbound waits until every protocol has unbound from the adapter, as
// NDIS does before it halts a miniport (a client unbinds once the call
// manager has withdrawn its address family, and may do so after the call
// manager itself is gone), and then halts the miniport (Halt). If ctx ends
// first, the medium is closed all the same (Close: no goroutine or socket
// outlives the node), the adapter stays (the mediator would refuse its
// removal, R-AF-23) and ctx's error is returned.
func (mp *Miniport) HaltUnbound(ctx context.Context) error {
	unbound := func() bool { return mp.adapter.Bound() == 0 }
	if err := statewait.Poll(ctx, 2*time.Millisecond, unbound); err != nil {
		mp.Close()
		return fmt.Errorf("miniport: %d protocol(s) still bound to the adapter: %w", mp.adapter.Bound(), err)
	}
	if st := mp.Halt(); st != ndis.StatusSuccess {
		return fmt.Errorf("miniport: halting the adapter: %w", st)
	}
	return nil
}

// Halt closes the medium (Close) and removes the adapter (MiniportHaltEx,
// as ndis.Adapter.RemoveAdapter models it). Every protocol must have
// unbound first; otherwise the mediator refuses with NDIS_STATUS_FAILURE
// and names what is left.
func (mp *Miniport) Halt() ndis.Status {
	mp.Close()
	return mp.adapter.RemoveAdapter()
}

// MiniportCoCreateVc models MiniportCoCreateVc: per-VC state, idle. It
// never pends (R-GEN-5).
func (mp *Miniport) MiniportCoCreateVc(adapterCtx any, h *ndis.Vc) (any, ndis.Status) {
	v := &vc{mp: mp, h: h}
	v.setStateLocked(vcIdle, "created")
	mp.mu.Lock()
	mp.vcSeq++
	v.seq = mp.vcSeq
	mp.vcs[v] = struct{}{}
	mp.mu.Unlock()
	return v, ndis.StatusSuccess
}

// MiniportCoDeleteVc models MiniportCoDeleteVc: frees the per-VC state.
// The mediator deletes only inactive VCs (R-VC-9), so nothing is bound.
func (mp *Miniport) MiniportCoDeleteVc(vcCtx any) ndis.Status {
	v, ok := vcCtx.(*vc)
	if !ok {
		return ndis.StatusInvalidData
	}
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if v.state != vcIdle {
		return ndis.StatusFailure
	}
	delete(mp.vcs, v)
	return ndis.StatusSuccess
}

// MiniportCoActivateVc models MiniportCoActivateVc. It reads the VC's
// VCParams (ParamMedia); unreadable ones are refused with
// NDIS_STATUS_INVALID_DATA, and so is a re-activation that changes the
// kind, the peer or the connection identifier. A signalling VC for a peer
// that has one, or a data VC on a connection identifier of that peer in
// use, is refused with NDIS_STATUS_VC_NOT_AVAILABLE.
//
// With the link to the peer up, the activation completes at once
// (SUCCESS), unless signalling of that peer is held for the VC or
// Config.Pend is set: then it pends and completes at once from another
// goroutine, and the held
// messages are indicated after NdisMCoActivateVcComplete. Without a link
// it pends while the miniport dials the peer, and completes with
// NdisMCoActivateVcComplete: SUCCESS once the link is up, else
// NDIS_STATUS_NO_ROUTE_TO_DESTINATION (unknown peer),
// NDIS_STATUS_DEST_OUT_OF_ORDER (unreachable, or no answer within
// Config.DialTimeout), NDIS_STATUS_CLOSING (the miniport closed) or
// NDIS_STATUS_FAILURE (anything else, such as a failed authentication).
// A re-activation puts the new traffic in force the same way.
func (mp *Miniport) MiniportCoActivateVc(vcCtx any, cp *ndis.CallParameters) ndis.Status {
	v, ok := vcCtx.(*vc)
	if !ok {
		return ndis.StatusInvalidData
	}
	var ret chan struct{} // a completion waiting for this call to return
	defer func() {
		if ret != nil {
			close(ret)
		}
	}()
	p, err := ParseMedia(cp)
	if err != nil {
		return ndis.StatusInvalidData
	}
	mp.mu.Lock()
	if mp.closed {
		mp.mu.Unlock()
		return ndis.StatusClosing
	}
	switch v.state {
	case vcActive:
		if p.Kind != v.p.Kind || p.Peer != v.p.Peer || p.ConnID != v.p.ConnID || p.Role != v.p.Role || v.reopen != nil {
			mp.mu.Unlock()
			return ndis.StatusInvalidData
		}
		// A root has no link of its own to wait for: its legs are
		// connected calls.
		linked := v.peer == nil || v.peer.link != nil
		if linked && !mp.cfg.Pend {
			mp.setParamsLocked(v, p)
			mp.mu.Unlock()
			return ndis.StatusSuccess
		}
		v.reopen, v.actParam = &p, cp
		if linked {
			ret = mp.afterReturnLocked(func() { mp.finishActivate(v, ndis.StatusSuccess) })
		} else {
			mp.dialLocked(v.peer, v)
		}
		mp.mu.Unlock()
		return ndis.StatusPending
	case vcIdle:
	default:
		mp.mu.Unlock()
		return ndis.StatusFailure // the mediator allows one activation or deactivation at a time (R-ACT-4)
	}
	if p.Role == Root {
		// Not bound to a peer: it sends to its legs and receives nothing.
		v.p, v.peer = p, nil
		mp.setParamsLocked(v, p)
		if !mp.cfg.Pend {
			v.setStateLocked(vcActive, "activated: root")
			mp.mu.Unlock()
			return ndis.StatusSuccess
		}
		v.actParam = cp // kept only while the activation pends
		v.setStateLocked(vcActivating, "root: completing")
		ret = mp.afterReturnLocked(func() { mp.finishActivate(v, ndis.StatusSuccess) })
		mp.mu.Unlock()
		return ndis.StatusPending
	}
	pr := mp.peerLocked(p.Peer)
	if !pr.bindLocked(v, p) {
		mp.mu.Unlock()
		return ndis.StatusVcNotAvailable
	}
	v.p, v.peer = p, pr
	v.setTrafficLocked(p)
	if pr.link != nil && !mp.cfg.Pend {
		v.setStateLocked(vcActive, "activated: link up")
		v.rxReady = p.Kind != Signalling // a signalling VC's opens with OidSignallingOpen
		mp.mu.Unlock()
		return ndis.StatusSuccess
	}
	v.actParam = cp // kept only while the activation pends: a held VC keeps no call parameters
	switch {
	case pr.link != nil:
		v.setStateLocked(vcActivating, "link up: completing")
		ret = mp.afterReturnLocked(func() { mp.finishActivate(v, ndis.StatusSuccess) })
	default:
		v.setStateLocked(vcActivating, "dialling "+p.Peer)
		mp.dialLocked(pr, v)
	}
	mp.mu.Unlock()
	return ndis.StatusPending
}

// setParamsLocked puts what a (re-)activation may change in force: p's
// traffic and a Root's legs.
func (mp *Miniport) setParamsLocked(v *vc, p VCParams) {
	v.setTrafficLocked(p)
	if p.Role != Root {
		return
	}
	v.p.Legs = p.Legs
	v.legs = v.legs[:0]
	for _, l := range p.Legs {
		v.legs = append(v.legs, mp.peerLocked(l.Peer))
	}
}

// setTrafficLocked puts p's traffic in force (new, full buckets).
func (v *vc) setTrafficLocked(p VCParams) {
	v.p.Transmit, v.p.Receive = p.Transmit, p.Receive
	v.txRates = shaping.RatesOf(p.Transmit.Flowspec(), v.maxTx())
	v.rxRates = shaping.RatesOf(p.Receive.Flowspec(), v.maxRx())
	v.txB.Reset()
	v.rxB.Reset()
}

// maxTx is the largest SDU the VC sends: its own limit, else its path's
// kind of limit (a datagram VC is also held to the link's datagram size
// when it sends).
func (v *vc) maxTx() int { return sduLimit(v.p.Kind, v.p.Transmit.MaxSduSize) }
func (v *vc) maxRx() int { return sduLimit(v.p.Kind, v.p.Receive.MaxSduSize) }

func sduLimit(k VCKind, own uint32) int {
	var path int
	switch k {
	case Signalling:
		return transport.MaxMessageLen
	case Reliable:
		path = transport.MaxStreamSDU
	default:
		path = 65535 // no datagram is longer
	}
	if own != 0 && int64(own) < int64(path) {
		return int(own)
	}
	return path
}

// finishActivate completes a pended activation or re-activation with st
// (NdisMCoActivateVcComplete), a data VC's receive path open.
func (mp *Miniport) finishActivate(v *vc, st ndis.Status) {
	mp.mu.Lock()
	cp := v.actParam
	v.actParam = nil
	switch {
	case v.reopen != nil:
		if st == ndis.StatusSuccess {
			mp.setParamsLocked(v, *v.reopen)
		}
		v.reopen = nil // a failed re-activation leaves the VC as it was (R-ACT-4)
		mp.mu.Unlock()
		mp.adapter.MCoActivateVcComplete(st, v.h, cp)
		return
	case st == ndis.StatusSuccess:
		v.setStateLocked(vcActive, "activated: path open")
		// Before the completion: the far end sends data only once the call
		// procedures that follow it let it (see the package documentation);
		// a signalling VC's receive path opens with OidSignallingOpen.
		v.rxReady = v.peer != nil && v.p.Kind != Signalling
	default:
		if v.peer != nil {
			v.peer.unbindLocked(v)
		}
		v.peer, v.legs = nil, nil
		v.setStateLocked(vcIdle, "activation failed: "+st.String())
	}
	mp.mu.Unlock()
	mp.adapter.MCoActivateVcComplete(st, v.h, cp)
}

// MiniportCoDeactivateVc models MiniportCoDeactivateVc: the VC stops
// receiving at once; it completes at once (SUCCESS) when none of its sends
// is still in the miniport (from another goroutine, PENDING first, with
// Config.Pend), else it pends until they have been completed
// (sends waiting to be shaped still go out, at their time) and completes
// with NdisMCoDeactivateVcComplete. A reliable VC's stream is then ended
// (Link.CloseReliable).
func (mp *Miniport) MiniportCoDeactivateVc(vcCtx any) ndis.Status {
	v, ok := vcCtx.(*vc)
	if !ok {
		return ndis.StatusInvalidData
	}
	var ret chan struct{} // a completion waiting for this call to return
	defer func() {
		if ret != nil {
			close(ret)
		}
	}()
	mp.mu.Lock()
	if v.state != vcActive || v.reopen != nil {
		mp.mu.Unlock()
		return ndis.StatusFailure // the mediator deactivates only active VCs (R-ACT-10)
	}
	v.rxReady = false
	if v.peer != nil {
		v.peer.unbindLocked(v)
	}
	v.setStateLocked(vcDeactivating, "deactivating")
	done := v.drainedLocked()
	if done && mp.cfg.Pend {
		ret = mp.afterReturnLocked(func() { mp.finishDeactivate(v) })
		mp.mu.Unlock()
		return ndis.StatusPending
	}
	mp.mu.Unlock()
	if !done {
		return ndis.StatusPending
	}
	mp.endStream(v)
	return ndis.StatusSuccess
}

// unlockFinishing releases mp.mu after v gave something back (a send
// completed, a receive or status indication returned) and, if that was the
// last thing a deactivation waited for, completes the deactivation.
func (mp *Miniport) unlockFinishing(v *vc) {
	done := v.drainedLocked()
	mp.mu.Unlock()
	if done {
		mp.finishDeactivate(v)
	}
}

// drainedLocked finishes a deactivation whose VC holds nothing more: it
// reports whether it did.
func (v *vc) drainedLocked() bool {
	if v.state != vcDeactivating || v.inflight > 0 || v.rxBusy > 0 || len(v.q) > 0 {
		return false
	}
	v.setStateLocked(vcIdle, "deactivated")
	return true
}

// endStream ends a deactivated reliable VC's stream on its link.
func (mp *Miniport) endStream(v *vc) {
	mp.mu.Lock()
	ts := v.targetsLocked()
	kind := v.p.Kind
	v.peer, v.legs = nil, nil
	mp.mu.Unlock()
	if kind != Reliable {
		return
	}
	for _, t := range ts {
		t.l.CloseReliable(t.conn)
	}
}

// target is where a data VC's SDUs go: a link and a connection identifier
// on it.
type target struct {
	l    transport.Link
	conn uint32
}

// targetsLocked lists where v's SDUs go now: its peer's link, or for a
// Root each leg whose node has a link (a leg without one is skipped).
func (v *vc) targetsLocked() []target {
	if v.p.Role == Root {
		ts := make([]target, 0, len(v.legs))
		for i, pr := range v.legs {
			if pr.link != nil {
				ts = append(ts, target{pr.link, v.p.Legs[i].ConnID})
			}
		}
		return ts
	}
	if v.peer == nil || v.peer.link == nil {
		return nil
	}
	return []target{{v.peer.link, v.p.ConnID}}
}

// finishDeactivate completes a pended deactivation whose last send or
// indication just ended (NdisMCoDeactivateVcComplete).
func (mp *Miniport) finishDeactivate(v *vc) {
	mp.endStream(v)
	mp.adapter.MCoDeactivateVcComplete(ndis.StatusSuccess, v.h)
}

// afterReturnLocked runs f, the completion of the request the miniport is
// handling, on a goroutine Close waits for, once the handler has returned
// PENDING (the caller closes the channel as it returns). A completion
// made while the handler still runs is parked by the mediator until it
// returns, and what the miniport did next (indicating held signalling on
// the VC) would reach a VC the mediator does not yet hold active
// (R-ACT-7).
func (mp *Miniport) afterReturnLocked(f func()) chan struct{} {
	ret := make(chan struct{})
	mp.goLocked(func() {
		<-ret
		f()
	})
	return ret
}

// goLocked runs f on a goroutine Close waits for.
func (mp *Miniport) goLocked(f func()) {
	mp.wg.Add(1)
	go func() {
		defer mp.wg.Done()
		f()
	}()
}
