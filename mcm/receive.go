package mcm

// Signalling and data received on a transport link: links take turns,
// and a peer whose calls are refused too fast is read more slowly.

import (
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
)

func (h *linkHandler) Message(msg []byte) { h.Messages([][]byte{msg}) }

// turnSize is how many received messages of one link are applied in one
// turn (see pacing.Turnstile).
const turnSize = 16

// Messages is Message for several messages at once
// (transport.BatchHandler): they are applied in order, turnSize at a time
// under one lock, then the mediator work and the signalling they caused go
// out together. Links take turns (d.turns): a peer that floods gets one
// turn in each round like any other, and while it waits its transport
// stops reading, so QUIC flow control holds it back.
func (h *linkHandler) Messages(msgs [][]byte) {
	d, p := h.d, h.p
	for len(msgs) > 0 {
		if !d.paceRefusals(p) {
			return // shutting down
		}
		n := min(len(msgs), turnSize)
		d.turns.Enter()
		d.mu.Lock()
		if p.tl != h.l || d.detached {
			d.mu.Unlock()
			d.turns.Leave()
			return
		}
		for _, msg := range msgs[:n] {
			p.view.In++
			d.traceSignal(p, trace.In, msg)
			d.core.ApplyLocked(p.as, p.as.Receive(msg))
		}
		d.mu.Unlock()
		d.core.Run()
		d.turns.Leave()
		msgs = msgs[n:]
	}
}

// paceRefusals waits, before a turn of p's signalling, for the refusals
// of p's calls over Config.RefusalRate; it reports false if the MCM is
// shutting down.
func (d *MCM) paceRefusals(p *peer) bool { return p.refusals.Wait(d.ctx) }

// refusedLocked counts a refusal of one of p's calls against
// Config.RefusalRate.
func (d *MCM) refusedLocked(p *peer) {
	if p.refusals.Refused() {
		d.log.Warn("refusing a peer's calls faster than the refusal rate: reading its signalling more slowly", "peer", p.name, "per_second", d.cfg.RefusalRate)
	}
}

var _ transport.BatchHandler = (*linkHandler)(nil)

func (h *linkHandler) Datagram(connID uint32, payload []byte) { h.d.receive(h.p, connID, payload) }

func (h *linkHandler) StreamData(connID uint32, sdu []byte) { h.d.receive(h.p, connID, sdu) }

// BorrowsStreamData: receive is done with an SDU when it returns (it
// indicates with NDIS_RECEIVE_FLAGS_RESOURCES, so clients copy during the
// indication, R-DATA-6), so the transport may lend its read buffer.
func (h *linkHandler) BorrowsStreamData() {}

var _ transport.DataBorrower = (*linkHandler)(nil)

// BorrowsMessages: Messages is done with each message when it returns
// (the Q.2931 link decodes it and copies out what outlives it; tracers
// copy what they keep, trace.Signal), so the transport may lend them from
// its read buffer.
func (h *linkHandler) BorrowsMessages() {}

var _ transport.MessageBorrower = (*linkHandler)(nil)
