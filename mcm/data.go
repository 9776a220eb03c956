package mcm

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/q2931/callctl"

	"github.com/condis-project/condis/internal/shaping"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// The data path.
//
// Sending (MiniportCoSendNetBufferLists): every NBL is one SDU and is
// completed exactly once, with
//
//   - NDIS_STATUS_INVALID_LENGTH if it is longer than the transmit
//     MaxSduSize negotiated for the call or, for a datagram VC, than what
//     the path carries in one datagram now (Link.MaxDatagramPayload, asked
//     again only for an SDU longer than the path carried before; if the
//     path shrank in between, the transport refuses the SDU, with the same
//     status). An SDU is never truncated or fragmented;
//   - NDIS_STATUS_RESOURCES if it does not conform to the transmit
//     flowspec and could only be made to conform by holding it back longer
//     than Config.MaxShapingDelay (it is dropped, and counted in the VC's
//     Stats.TxPoliced and the node's Totals);
//   - NDIS_STATUS_CLOSING if the call is going away (the network closed
//     it, or it is being closed) before it went out;
//   - NDIS_STATUS_FAILURE if the transport refused it (for example the link
//     is down while the call waits for T309), or the VC has no transmit
//     direction (a leaf of a point-to-multipoint call);
//   - NDIS_STATUS_SUCCESS once the transport took it: a datagram (best
//     effort, like AAL5 over ATM) or an SDU on the VC's reliable stream.
//     A multipoint root's SDU goes to every leaf node; it succeeds if at
//     least one took it.
//
// Policing and shaping: the dual token bucket of package internal/shaping
// per VC on the transmit flowspec (a sustained and a peak bucket, each at
// least one maximum SDU deep and 50 µs of its rate deeper). An SDU short
// of tokens is delayed until both buckets would have had them (shaping),
// in order behind earlier delayed SDUs, unless that delay exceeds
// Config.MaxShapingDelay: then it is dropped (policing) and its tokens
// given back.
//
// Receiving: each datagram (or reliable SDU) whose connection identifier
// belongs to a call is indicated on the call's VC(s) with
// NdisMCoIndicateReceiveNetBufferLists, one NBL per SDU, with
// NDIS_RECEIVE_FLAGS_RESOURCES (the client copies; nothing is outstanding
// when the VC is deactivated). Received SDUs are not policed: the sending
// node polices what it sends.
//
// Counting: each VC counts its SDUs (Stats, in CallInfo) and the MCM sums
// them as they happen (Totals), so the node's totals keep the data of VCs
// long deleted. The totals are atomics, tx and rx on separate cache lines
// so that a sender and a receiver do not share one; they are added with
// the VC's lock held, as its own counters are, so an SDU is in the totals
// before its VC's close can complete.

// dataPath is a VC's data state. What every VC needs is kept inline and
// small (the MCM holds one per VC, and a node may hold a million); what
// only a VC that carries data needs — the token buckets, the shaping
// queue, the counters — is allocated on its first SDU (active), as are a
// multipoint root's destinations.
type dataPath struct {
	mu        sync.Mutex
	txOK      bool
	noTx      bool // the VC has no transmit direction (a multipoint leaf)
	rxOK      bool
	reliable  bool
	txRefusal ndis.Status // completion status of sends while !txOK
	maxTx     int32       // transmit MaxSduSize (clamped to MaxInt32)
	// pathMax is a datagram payload every destination's link carried when
	// last asked (Link.MaxDatagramPayload), 0 if not known: SDUs up to it
	// skip the question. A path that shrank since makes the transport
	// refuse the SDU (NDIS_STATUS_INVALID_LENGTH all the same) and resets
	// it.
	pathMax  int32
	flow     shaping.Rates
	inflight int32 // lists the MCM holds and has not completed
	rxBusy   int32 // indications in progress
	// to is the destination of a point-to-point VC: its call's peer and
	// connection identifier, which do not change once the VC is open.
	// A multipoint root's destinations are in act.dests instead.
	to   *callctl.Call
	idle func() // set by stop: run once inflight and rxBusy are 0
	act  *dataActive
}

// dataActive is the state of a VC that has carried data.
type dataActive struct {
	// The dual token bucket, made from flow when first needed (a bucket
	// starts full, so making it late is the same as making it at open).
	buckets shaping.Buckets

	q      []queued // SDUs waiting for the worker, from qHead on
	qHead  int
	worker bool
	kick   chan struct{} // wakes a worker waiting for the head's time (made on first wait)

	st Stats

	dests []*callctl.Call // a multipoint root's destinations (setDests)
}

type queued struct {
	n  *ndis.NetBufferList
	at time.Time
}

// activeLocked returns the VC's active state, making it on first use.
func (dp *dataPath) activeLocked() *dataActive {
	if dp.act == nil {
		dp.act = &dataActive{}
	}
	return dp.act
}

// open sets the VC up for data with its activation's transmit flowspec,
// towards the call to.
func (dp *dataPath) open(tx ndis.Flowspec, maxTx int, reliable bool, to *callctl.Call, send, recv bool) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.reliable, dp.maxTx, dp.to = reliable, int32(min(maxTx, math.MaxInt32)), to
	if dp.act != nil {
		dp.act.dests = nil
	}
	dp.pathMax = 0
	dp.setFlowLocked(tx)
	dp.txOK, dp.rxOK, dp.idle = send, recv, nil
	dp.txRefusal = ndis.StatusFailure
	dp.noTx = tx.ServiceType == ndis.ServiceNoTraffic
	if dp.noTx {
		dp.txOK = false
	}
}

// setFlow replaces the buckets (a QoS change).
func (dp *dataPath) setFlow(tx ndis.Flowspec) {
	dp.mu.Lock()
	dp.setFlowLocked(tx)
	dp.mu.Unlock()
}

// setFlowLocked records the buckets of tx; new (full) buckets are made
// from them on the next SDU.
func (dp *dataPath) setFlowLocked(tx ndis.Flowspec) {
	dp.flow = shaping.RatesOf(tx, int(dp.maxTx))
	if a := dp.act; a != nil {
		a.buckets.Reset()
	}
}

// setDests sets a multipoint root's destinations: its connected legs.
func (dp *dataPath) setDests(ds []*callctl.Call) {
	dp.mu.Lock()
	dp.to = nil
	dp.activeLocked().dests = ds
	dp.pathMax = 0
	dp.mu.Unlock()
}

// destsLocked returns where the VC's SDUs go. A point-to-point VC's one
// destination is put in one, so the VC keeps no slice; the result is only
// for the caller's use.
func (dp *dataPath) destsLocked(one *[1]*callctl.Call) []*callctl.Call {
	if dp.to != nil {
		one[0] = dp.to
		return one[:]
	}
	if dp.act != nil {
		return dp.act.dests
	}
	return nil
}

func (dp *dataPath) allowSend() {
	dp.mu.Lock()
	if !dp.noTx && dp.maxTx > 0 && dp.idle == nil && !dp.txStoppedLocked() {
		dp.txOK = true
	}
	dp.mu.Unlock()
}

func (dp *dataPath) txStoppedLocked() bool { return dp.txRefusal == ndis.StatusClosing }

func (dp *dataPath) allowReceive() {
	dp.mu.Lock()
	if dp.idle == nil {
		dp.rxOK = true
	}
	dp.mu.Unlock()
}

func (dp *dataPath) stats() Stats {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.act == nil {
		return Stats{}
	}
	return dp.act.st
}

// MiniportCoSendNetBufferLists models MiniportCoSendNetBufferLists: every
// list is one SDU, sent as one datagram (or on the VC's reliable stream)
// and completed exactly once with NdisMCoSendNetBufferListsComplete (see
// the data-path comment for the statuses).
func (d *MCM) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcOf(vcCtx.(*callctl.Vc))
	for n := nbls; n != nil; {
		next := n.Next
		n.Next = nil
		d.send(v, n)
		n = next
	}
}

func (d *MCM) send(v *vc, n *ndis.NetBufferList) {
	dp := &v.data
	dp.mu.Lock()
	dp.inflight++
	if !dp.txOK {
		st := dp.txRefusal
		dp.mu.Unlock()
		d.complete(v, n, st)
		return
	}
	size := len(n.Data)
	var one [1]*callctl.Call
	if size > int(dp.maxTx) || (!dp.reliable && size > int(dp.pathMax) && !dp.pathCarriesLocked(dp.destsLocked(&one), size)) {
		dp.mu.Unlock()
		d.complete(v, n, ndis.StatusInvalidLength)
		return
	}
	a := dp.activeLocked()
	now := time.Now()
	delay, ok := dp.conformLocked(a, now, size, d.cfg.MaxShapingDelay)
	if !ok {
		a.st.TxPoliced++ // complete counts it dropped
		d.totals.txPoliced.Add(1)
		dp.mu.Unlock()
		d.complete(v, n, ndis.StatusResources)
		return
	}
	if a.qHead == len(a.q) && delay == 0 && !dp.reliable && !a.worker {
		dests := dp.destsLocked(&one)
		dp.mu.Unlock()
		d.completeSent(v, n, transmit(dests, false, n.Data))
		return
	}
	if delay > 0 {
		a.st.TxShaped++
		d.totals.txShaped.Add(1)
	}
	a.q = append(a.q, queued{n: n, at: now.Add(delay)})
	if !a.worker {
		a.worker = d.spawn(func() { d.sendWorker(v) })
	}
	dp.mu.Unlock()
}

// pathCarriesLocked asks every destination's link how long a datagram it
// carries now and remembers the shortest; it reports whether size fits.
// A destination whose link is down does not limit (the send fails there).
func (dp *dataPath) pathCarriesLocked(dests []*callctl.Call, size int) bool {
	m := math.MaxInt32
	for _, ds := range dests {
		if l := peerOf(ds.Assoc).current(); l != nil {
			m = min(m, l.MaxDatagramPayload())
		}
	}
	dp.pathMax = int32(m)
	return size <= m
}

// conformLocked takes size tokens from the VC's buckets and returns how
// long the SDU must wait for them (shaping); ok is false if it cannot
// conform within maxDelay (policing), and then no tokens are taken.
func (dp *dataPath) conformLocked(a *dataActive, now time.Time, size int, maxDelay time.Duration) (delay time.Duration, ok bool) {
	return a.buckets.Conform(dp.flow, now, size, maxDelay)
}

// dataTotals are every VC's data counters summed (Totals).
type dataTotals struct {
	txPackets, txBytes, txDropped, txPoliced, txShaped atomic.Uint64
	_                                                  [64]byte // rx on another cache line than tx
	rxPackets, rxBytes, rxDropped                      atomic.Uint64
}

// Totals returns the data counters of every VC this MCM has carried data
// on, summed since it started: deleted VCs' SDUs stay counted. Each field
// only grows. A metrics scrape reads them; it costs a few atomic loads.
func (d *MCM) Totals() Stats {
	t := &d.totals
	return Stats{
		TxPackets: t.txPackets.Load(), TxBytes: t.txBytes.Load(), TxDropped: t.txDropped.Load(),
		TxPoliced: t.txPoliced.Load(), TxShaped: t.txShaped.Load(),
		RxPackets: t.rxPackets.Load(), RxBytes: t.rxBytes.Load(), RxDropped: t.rxDropped.Load(),
	}
}

// sendWorker sends a VC's queued SDUs in order, each at its time.
func (d *MCM) sendWorker(v *vc) {
	dp := &v.data
	var one [1]*callctl.Call
	for {
		dp.mu.Lock()
		a := dp.act
		if a.qHead == len(a.q) {
			a.q, a.qHead = a.q[:0], 0
			a.worker = false
			dp.mu.Unlock()
			return
		}
		head := a.q[a.qHead]
		if wait := time.Until(head.at); wait > 0 {
			if a.kick == nil {
				a.kick = make(chan struct{}, 1)
			}
			kick := a.kick
			dp.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-kick:
				t.Stop()
			}
			continue
		}
		a.q[a.qHead] = queued{}
		a.qHead++
		if a.qHead >= 64 && 2*a.qHead >= len(a.q) {
			// Reuse the front of the array while the queue never drains.
			k := copy(a.q, a.q[a.qHead:])
			clear(a.q[k:])
			a.q, a.qHead = a.q[:k], 0
		}
		dests, reliable := dp.destsLocked(&one), dp.reliable
		dp.mu.Unlock()
		d.completeSent(v, head.n, transmit(dests, reliable, head.n.Data))
	}
}

// transmit hands one SDU to the transport towards every destination (the
// calls' peers, on the calls' connection identifiers).
func transmit(dests []*callctl.Call, reliable bool, data []byte) ndis.Status {
	var first error
	sent := false
	for _, ds := range dests {
		l := peerOf(ds.Assoc).current()
		var err error
		switch {
		case l == nil:
			err = transport.ErrLinkDown
		case reliable:
			err = l.SendReliable(ds.Conn, data)
		default:
			err = l.SendDatagram(ds.Conn, data)
		}
		if err == nil {
			sent = true
		} else if first == nil {
			first = err
		}
	}
	switch {
	case sent:
		return ndis.StatusSuccess
	case errors.Is(first, transport.ErrDatagramTooLarge):
		return ndis.StatusInvalidLength
	}
	return ndis.StatusFailure
}

// completeSent completes a list the transport was given: one it refused
// as too long tells that the path carries less than pathMax now.
func (d *MCM) completeSent(v *vc, n *ndis.NetBufferList, st ndis.Status) {
	if st == ndis.StatusInvalidLength {
		dp := &v.data
		dp.mu.Lock()
		dp.pathMax = 0
		dp.mu.Unlock()
	}
	d.complete(v, n, st)
}

// complete completes one list and accounts for it.
func (d *MCM) complete(v *vc, n *ndis.NetBufferList, st ndis.Status) {
	n.Status = st
	size := uint64(len(n.Data))
	d.a.MCoSendNetBufferListsComplete(v.Handle, n, 0)
	dp := &v.data
	dp.mu.Lock()
	dp.inflight--
	a := dp.activeLocked()
	if st == ndis.StatusSuccess {
		a.st.TxPackets++
		a.st.TxBytes += size
		d.totals.txPackets.Add(1)
		d.totals.txBytes.Add(size)
	} else {
		a.st.TxDropped++
		d.totals.txDropped.Add(1)
	}
	idle := dp.takeIdleLocked()
	dp.mu.Unlock()
	if idle != nil {
		d.core.Later(idle)
	}
}

func (dp *dataPath) takeIdleLocked() func() {
	if dp.idle == nil || dp.inflight > 0 || dp.rxBusy > 0 {
		return nil
	}
	f := dp.idle
	dp.idle = func() {} // stopped: stays non-nil so nothing reopens
	return f
}

// haltTx refuses further sends with st and completes the queued ones with
// st (the call is going away).
func (d *MCM) haltTx(v *vc, st ndis.Status) {
	dp := &v.data
	dp.mu.Lock()
	dp.txOK, dp.txRefusal = false, st
	var q []queued
	if a := dp.act; a != nil && a.qHead < len(a.q) {
		q = a.q[a.qHead:]
		a.q, a.qHead = nil, 0
		if a.kick != nil {
			select {
			case a.kick <- struct{}{}:
			default:
			}
		}
	}
	dp.mu.Unlock()
	for _, e := range q {
		d.complete(v, e.n, st)
	}
}

// stopData ends the VC's data path: no more sends (completed with
// NDIS_STATUS_CLOSING) or receives; then runs idle, as queued mediator
// work, once every list the MCM holds is completed and no indication is in
// progress — so the VC can be deactivated (R-ACT-7).
func (d *MCM) stopData(v *vc, idle func()) {
	d.haltTx(v, ndis.StatusClosing)
	dp := &v.data
	dp.mu.Lock()
	dp.rxOK = false
	dp.idle = idle
	f := dp.takeIdleLocked()
	dp.mu.Unlock()
	if f != nil {
		d.core.Later(f)
	}
}

// closeStreams ends this side's reliable streams of a VC whose call is over.
func (v *vc) closeStreams() {
	dp := &v.data
	var one [1]*callctl.Call
	dp.mu.Lock()
	reliable, dests := dp.reliable, dp.destsLocked(&one)
	dp.mu.Unlock()
	if !reliable {
		return
	}
	for _, ds := range dests {
		if l := peerOf(ds.Assoc).current(); l != nil {
			l.CloseReliable(ds.Conn)
		}
	}
}

// resetData makes the VC's data path reusable for a new call.
func (v *vc) resetData() {
	dp := &v.data
	dp.mu.Lock()
	dp.idle, dp.txOK, dp.rxOK, dp.to = nil, false, false, nil
	if dp.act != nil {
		dp.act.dests = nil
	}
	dp.txRefusal = ndis.StatusFailure
	dp.mu.Unlock()
}

// rxLists recycles the lists receive indicates: it indicates with
// NDIS_RECEIVE_FLAGS_RESOURCES, so a list is the MCM's again as soon as
// the indication returns.
var rxLists = sync.Pool{New: func() any { return new(ndis.NetBufferList) }}

// receive indicates one received SDU on the VCs of its call.
func (d *MCM) receive(p *peer, connID uint32, payload []byte) {
	var one [1]*callctl.Vc
	p.as.ConnMu.RLock()
	var to []*callctl.Vc
	if c := p.as.ConnLocked(connID); c != nil {
		to = c.RxToLocked(&one)
	}
	p.as.ConnMu.RUnlock()
	for _, x := range to {
		v := vcOf(x)
		dp := &v.data
		dp.mu.Lock()
		if !dp.rxOK {
			dp.activeLocked().st.RxDropped++
			d.totals.rxDropped.Add(1)
			dp.mu.Unlock()
			continue
		}
		dp.rxBusy++
		dp.mu.Unlock()
		nbl := rxLists.Get().(*ndis.NetBufferList)
		nbl.Data = payload
		st := d.a.MCoIndicateReceiveNetBufferLists(v.Handle, nbl, 1, ndis.ReceiveFlagsResources)
		*nbl = ndis.NetBufferList{}
		rxLists.Put(nbl)
		dp.mu.Lock()
		dp.rxBusy--
		a := dp.activeLocked()
		if st == ndis.StatusSuccess {
			a.st.RxPackets++
			a.st.RxBytes += uint64(len(payload))
			d.totals.rxPackets.Add(1)
			d.totals.rxBytes.Add(uint64(len(payload)))
		} else {
			a.st.RxDropped++
			d.totals.rxDropped.Add(1)
		}
		idle := dp.takeIdleLocked()
		dp.mu.Unlock()
		if idle != nil {
			d.core.Later(idle)
		}
	}
}

// MiniportReturnNetBufferLists models MiniportReturnNetBufferLists. The MCM
// indicates with NDIS_RECEIVE_FLAGS_RESOURCES, so nothing comes back.
func (d *MCM) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
}

// MiniportCoOidRequest models MiniportCoOidRequest: the miniport half
// answers no OIDs.
func (d *MCM) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}
