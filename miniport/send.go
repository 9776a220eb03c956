package miniport

import (
	"errors"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// MiniportCoSendNetBufferLists models MiniportCoSendNetBufferLists: every
// list is one SDU (a whole Q.2931 message on a signalling VC) and is
// completed exactly once with NdisMCoSendNetBufferListsComplete, with
//
//   - NDIS_STATUS_SUCCESS once the transport took it;
//   - NDIS_STATUS_INVALID_LENGTH if it is longer than the VC's transmit
//     MaxSduSize, than a datagram the path carries now
//     (Link.MaxDatagramPayload), than a reliable SDU
//     (transport.MaxStreamSDU), or is not a signalling message's length
//     (transport.MinMessageLen to MaxMessageLen). Nothing is truncated or
//     fragmented;
//   - NDIS_STATUS_RESOURCES if it could conform to the transmit traffic
//     only by being held back longer than Config.MaxShapingDelay (it is
//     dropped: Stats.TxPoliced);
//   - NDIS_STATUS_FAILURE if there is no link to the peer, the link went
//     down before the SDU went out, or the transport refused it;
//   - NDIS_STATUS_VC_NOT_ACTIVATED if the VC is not active.
//
// Signalling and unshaped datagrams go out on the caller's goroutine
// (the transport never blocks them); shaped SDUs and reliable ones go out
// in order from a goroutine of the VC.
func (mp *Miniport) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v, _ := vcCtx.(*vc)
	for n := nbls; n != nil; {
		next := n.Next
		n.Next = nil
		if v == nil {
			n.Status = ndis.StatusInvalidData // not a VC of this miniport: the mediator never does this
			mp.adapter.MCoSendNetBufferListsComplete(nil, n, 0)
		} else {
			mp.send(v, n)
		}
		n = next
	}
}

func (mp *Miniport) send(v *vc, n *ndis.NetBufferList) {
	mp.mu.Lock()
	v.inflight++
	if v.state != vcActive && v.state != vcDeactivating {
		mp.mu.Unlock()
		mp.complete(v, n, ndis.StatusVcNotActivated)
		return
	}
	ts := v.targetsLocked()
	if len(ts) == 0 || mp.closed || v.p.Role == Leaf {
		mp.mu.Unlock()
		mp.complete(v, n, ndis.StatusFailure)
		return
	}
	size := len(n.Data)
	if v.p.Kind == Signalling {
		mp.mu.Unlock()
		if transport.CheckMessage(n.Data) != nil {
			mp.complete(v, n, ndis.StatusInvalidLength)
			return
		}
		mp.complete(v, n, sendStatus(ts[0].l.Send(n.Data)))
		return
	}
	tooLong := size > v.maxTx()
	for _, t := range ts {
		tooLong = tooLong || (v.p.Kind == Datagram && size > t.l.MaxDatagramPayload())
	}
	if tooLong {
		mp.mu.Unlock()
		mp.complete(v, n, ndis.StatusInvalidLength)
		return
	}
	now := time.Now()
	delay, ok := v.txB.Conform(v.txRates, now, size, mp.cfg.MaxShapingDelay)
	if !ok {
		v.st.TxPoliced++
		mp.stats.Total.TxPoliced++
		mp.mu.Unlock()
		mp.complete(v, n, ndis.StatusResources)
		return
	}
	if delay == 0 && len(v.q) == 0 && v.p.Kind == Datagram {
		mp.mu.Unlock()
		mp.complete(v, n, sendTo(ts, Datagram, n.Data))
		return
	}
	if delay > 0 {
		v.st.TxShaped++
		mp.stats.Total.TxShaped++
	}
	v.q = append(v.q, queued{n: n, at: now.Add(delay)})
	if !v.worker {
		v.worker, v.kick = true, make(chan struct{}, 1)
		mp.goLocked(func() { mp.sendWorker(v) })
	}
	mp.mu.Unlock()
}

// sendTo sends one data SDU of kind to every target: SUCCESS if at least
// one took it (a multipoint root's leaf that lost its link misses it, as
// a cell lost on one branch), else the status of the first failure.
func sendTo(ts []target, kind VCKind, sdu []byte) ndis.Status {
	sent, first := false, ndis.Status(0)
	for _, t := range ts {
		var err error
		if kind == Reliable {
			err = t.l.SendReliable(t.conn, sdu)
		} else {
			err = t.l.SendDatagram(t.conn, sdu)
		}
		if st := sendStatus(err); st == ndis.StatusSuccess {
			sent = true
		} else if first == 0 {
			first = st
		}
	}
	switch {
	case sent:
		return ndis.StatusSuccess
	case first == 0:
		return ndis.StatusFailure
	}
	return first
}

// sendStatus is the completion status of a transport send's outcome.
func sendStatus(err error) ndis.Status {
	switch {
	case err == nil:
		return ndis.StatusSuccess
	case errors.Is(err, transport.ErrDatagramTooLarge), errors.Is(err, transport.ErrMessageSize):
		return ndis.StatusInvalidLength
	}
	return ndis.StatusFailure
}

// sendWorker sends a VC's queued SDUs in order, each at its time.
func (mp *Miniport) sendWorker(v *vc) {
	for {
		mp.mu.Lock()
		if len(v.q) == 0 {
			v.worker = false
			mp.mu.Unlock()
			return
		}
		head := v.q[0]
		if wait := time.Until(head.at); wait > 0 {
			kick := v.kick
			mp.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-kick:
				t.Stop()
			}
			continue
		}
		v.q[0] = queued{}
		v.q = v.q[1:]
		ts, kind := v.targetsLocked(), v.p.Kind
		mp.mu.Unlock()
		mp.complete(v, head.n, sendTo(ts, kind, head.n.Data))
	}
}

// flush completes every SDU queued on v with st (its link went down, or
// the miniport closed) and wakes its worker.
func (mp *Miniport) flush(v *vc, st ndis.Status) {
	mp.mu.Lock()
	q := v.q
	v.q = nil
	if v.kick != nil {
		select {
		case v.kick <- struct{}{}:
		default:
		}
	}
	mp.mu.Unlock()
	for _, e := range q {
		mp.complete(v, e.n, st)
	}
}

// flushAll flushes every VC.
func (mp *Miniport) flushAll(st ndis.Status) {
	mp.mu.Lock()
	vs := make([]*vc, 0, len(mp.vcs))
	for v := range mp.vcs {
		vs = append(vs, v)
	}
	mp.mu.Unlock()
	for _, v := range vs {
		mp.flush(v, st)
	}
}

// complete completes one send (NdisMCoSendNetBufferListsComplete), counts
// it, and finishes a deactivation waiting for it.
func (mp *Miniport) complete(v *vc, n *ndis.NetBufferList, st ndis.Status) {
	n.Status = st
	size := uint64(len(n.Data))
	// Counted before the protocol hears of it, so its counters agree with
	// what it was told; uncounted from in flight only after, so a
	// deactivation never completes ahead of a send.
	mp.mu.Lock()
	if st == ndis.StatusSuccess {
		v.st.TxPackets++
		v.st.TxBytes += size
		mp.stats.Total.TxPackets++
		mp.stats.Total.TxBytes += size
	} else {
		v.st.TxDropped++
		mp.stats.Total.TxDropped++
	}
	mp.mu.Unlock()
	mp.adapter.MCoSendNetBufferListsComplete(v.h, n, 0)
	mp.mu.Lock()
	v.inflight--
	mp.unlockFinishing(v)
}
