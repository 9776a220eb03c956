package mcm

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"

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
//     the path carries in one datagram now (Link.MaxDatagramPayload). An
//     SDU is never truncated or fragmented;
//   - NDIS_STATUS_RESOURCES if it does not conform to the transmit
//     flowspec and could only be made to conform by holding it back longer
//     than Config.MaxShapingDelay (it is dropped);
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
// Policing and shaping: a dual token bucket (golang.org/x/time/rate) per
// VC on the transmit flowspec: a sustained bucket filling at TokenRate
// bytes/s and holding TokenBucketSize bytes, and a peak bucket filling at
// PeakBandwidth bytes/s and holding one maximum SDU. Either is left out
// when its rate is QOS_NOT_SPECIFIED or POSITIVE_INFINITY_RATE. Each bucket
// is at least one maximum SDU deep, so every SDU the negotiated MaxSduSize
// allows can conform. An SDU takes its size in tokens from both buckets;
// if either is short, the SDU is delayed until both would have had them
// (shaping), in order behind earlier delayed SDUs, unless that delay
// exceeds Config.MaxShapingDelay: then it is dropped (policing) and its
// tokens given back.
//
// Receiving: each datagram (or reliable SDU) whose connection identifier
// belongs to a call is indicated on the call's VC(s) with
// NdisMCoIndicateReceiveNetBufferLists, one NBL per SDU, with
// NDIS_RECEIVE_FLAGS_RESOURCES (the client copies; nothing is outstanding
// when the VC is deactivated).

type dataPath struct {
	mu        sync.Mutex
	txOK      bool
	noTx      bool        // the VC has no transmit direction (a multipoint leaf)
	txRefusal ndis.Status // completion status of sends while !txOK
	rxOK      bool
	reliable  bool
	maxTx     int
	dests     []dest
	sustained *rate.Limiter
	peak      *rate.Limiter
	maxDelay  time.Duration

	q      []queued
	worker bool
	kick   chan struct{}

	inflight int    // lists the MCM holds and has not completed
	rxBusy   int    // indications in progress
	idle     func() // set by stop: run once inflight and rxBusy are 0
	st       Stats
}

type dest struct {
	p    *peer
	conn uint32
}

type queued struct {
	n  *ndis.NetBufferList
	at time.Time
}

// open sets the VC up for data with its activation's transmit flowspec.
func (dp *dataPath) open(tx ndis.Flowspec, maxTx int, reliable bool, dests []dest, maxDelay time.Duration, send, recv bool) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.reliable, dp.maxTx, dp.dests, dp.maxDelay = reliable, maxTx, dests, maxDelay
	dp.setFlowLocked(tx)
	dp.txOK, dp.rxOK, dp.idle = send, recv, nil
	dp.txRefusal = ndis.StatusFailure
	dp.noTx = tx.ServiceType == ndis.ServiceNoTraffic
	if dp.noTx {
		dp.txOK = false
	}
	if dp.kick == nil {
		dp.kick = make(chan struct{}, 1)
	}
}

// setFlow replaces the buckets (a QoS change).
func (dp *dataPath) setFlow(tx ndis.Flowspec) {
	dp.mu.Lock()
	dp.setFlowLocked(tx)
	dp.mu.Unlock()
}

func (dp *dataPath) setFlowLocked(tx ndis.Flowspec) {
	depth := max(dp.maxTx, 1)
	dp.sustained, dp.peak = nil, nil
	if r := tx.TokenRate; !unspecified(r) && r > 0 {
		b := depth
		if s := tx.TokenBucketSize; !unspecified(s) && int(s) > b {
			b = int(s)
		}
		dp.sustained = rate.NewLimiter(rate.Limit(r), b)
	}
	if r := tx.PeakBandwidth; !unspecified(r) && r > 0 {
		dp.peak = rate.NewLimiter(rate.Limit(r), depth)
	}
}

func (dp *dataPath) setDests(ds []dest) {
	dp.mu.Lock()
	dp.dests = ds
	dp.mu.Unlock()
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
	return dp.st
}

// MiniportCoSendNetBufferLists models MiniportCoSendNetBufferLists: every
// list is one SDU, sent as one datagram (or on the VC's reliable stream)
// and completed exactly once with NdisMCoSendNetBufferListsComplete (see
// the data-path comment for the statuses).
func (d *MCM) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcCtx.(*vc)
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
	if size > dp.maxTx {
		dp.mu.Unlock()
		d.complete(v, n, ndis.StatusInvalidLength)
		return
	}
	if !dp.reliable {
		for _, ds := range dp.dests {
			if l := ds.p.current(); l != nil && size > l.MaxDatagramPayload() {
				dp.mu.Unlock()
				d.complete(v, n, ndis.StatusInvalidLength)
				return
			}
		}
	}
	now := time.Now()
	var delay time.Duration
	var rs []*rate.Reservation
	for _, lim := range []*rate.Limiter{dp.sustained, dp.peak} {
		if lim == nil {
			continue
		}
		r := lim.ReserveN(now, size)
		rs = append(rs, r)
		if !r.OK() {
			delay = dp.maxDelay + 1 // cannot conform: drop
			continue
		}
		delay = max(delay, r.DelayFrom(now))
	}
	if delay > dp.maxDelay {
		for _, r := range rs {
			r.CancelAt(now)
		}
		dp.mu.Unlock()
		d.complete(v, n, ndis.StatusResources)
		return
	}
	if len(dp.q) == 0 && delay == 0 && !dp.reliable && !dp.worker {
		dests := dp.dests
		dp.mu.Unlock()
		d.complete(v, n, transmit(dests, false, n.Data))
		return
	}
	if delay > 0 {
		dp.st.TxShaped++
	}
	dp.q = append(dp.q, queued{n: n, at: now.Add(delay)})
	if !dp.worker {
		dp.worker = d.spawn(func() { d.sendWorker(v) })
	}
	dp.mu.Unlock()
}

// sendWorker sends a VC's queued SDUs in order, each at its time.
func (d *MCM) sendWorker(v *vc) {
	dp := &v.data
	for {
		dp.mu.Lock()
		if len(dp.q) == 0 {
			dp.worker = false
			dp.mu.Unlock()
			return
		}
		head := dp.q[0]
		if wait := time.Until(head.at); wait > 0 {
			kick := dp.kick
			dp.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-kick:
				t.Stop()
			}
			continue
		}
		dp.q[0] = queued{}
		dp.q = dp.q[1:]
		dests, reliable := dp.dests, dp.reliable
		dp.mu.Unlock()
		d.complete(v, head.n, transmit(dests, reliable, head.n.Data))
	}
}

// transmit hands one SDU to the transport towards every destination.
func transmit(dests []dest, reliable bool, data []byte) ndis.Status {
	var first error
	sent := false
	for _, ds := range dests {
		l := ds.p.current()
		var err error
		switch {
		case l == nil:
			err = transport.ErrLinkDown
		case reliable:
			err = l.SendReliable(ds.conn, data)
		default:
			err = l.SendDatagram(ds.conn, data)
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

// complete completes one list and accounts for it.
func (d *MCM) complete(v *vc, n *ndis.NetBufferList, st ndis.Status) {
	n.Status = st
	size := uint64(len(n.Data))
	d.a.MCoSendNetBufferListsComplete(v.h, n, 0)
	dp := &v.data
	dp.mu.Lock()
	dp.inflight--
	if st == ndis.StatusSuccess {
		dp.st.TxPackets++
		dp.st.TxBytes += size
	} else {
		dp.st.TxDropped++
	}
	idle := dp.takeIdleLocked()
	dp.mu.Unlock()
	if idle != nil {
		d.later(idle)
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

// later queues f as mediator work and runs the queue.
func (d *MCM) later(f func()) {
	d.mu.Lock()
	d.enqueueLocked(f)
	d.mu.Unlock()
	d.run()
}

// haltTx refuses further sends with st and completes the queued ones with
// st (the call is going away).
func (d *MCM) haltTx(v *vc, st ndis.Status) {
	dp := &v.data
	dp.mu.Lock()
	dp.txOK, dp.txRefusal = false, st
	q := dp.q
	dp.q = nil
	if dp.kick != nil && len(q) > 0 {
		select {
		case dp.kick <- struct{}{}:
		default:
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
		d.later(f)
	}
}

// closeStreams ends this side's reliable streams of a VC whose call is over.
func (v *vc) closeStreams() {
	dp := &v.data
	dp.mu.Lock()
	reliable, dests := dp.reliable, dp.dests
	dp.mu.Unlock()
	if !reliable {
		return
	}
	for _, ds := range dests {
		if l := ds.p.current(); l != nil {
			l.CloseReliable(ds.conn)
		}
	}
}

// resetData makes the VC's data path reusable for a new call.
func (v *vc) resetData() {
	dp := &v.data
	dp.mu.Lock()
	dp.idle, dp.txOK, dp.rxOK, dp.dests = nil, false, false, nil
	dp.txRefusal = ndis.StatusFailure
	dp.mu.Unlock()
}

// receive indicates one received SDU on the VCs of its call.
func (d *MCM) receive(p *peer, connID uint32, payload []byte) {
	p.rxMu.RLock()
	var to []*vc
	if c := p.rx[connID]; c != nil {
		to = c.rxTo
	}
	p.rxMu.RUnlock()
	for _, v := range to {
		dp := &v.data
		dp.mu.Lock()
		if !dp.rxOK {
			dp.st.RxDropped++
			dp.mu.Unlock()
			continue
		}
		dp.rxBusy++
		dp.mu.Unlock()
		nbl := &ndis.NetBufferList{Data: payload}
		st := d.a.MCoIndicateReceiveNetBufferLists(v.h, nbl, 1, ndis.ReceiveFlagsResources)
		dp.mu.Lock()
		dp.rxBusy--
		if st == ndis.StatusSuccess {
			dp.st.RxPackets++
			dp.st.RxBytes += uint64(len(payload))
		} else {
			dp.st.RxDropped++
		}
		idle := dp.takeIdleLocked()
		dp.mu.Unlock()
		if idle != nil {
			d.later(idle)
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
