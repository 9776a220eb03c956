package quic

import (
	"bytes"
	"context"
	"testing"

	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
)

// This file tests condis's change to this copy of quic-go (CONDIS.md):
// a stream keeps the buffer of its last non-pooled STREAM frame for the
// next one. It is run from the root module by .ci/run:
//
//	go test -run Condis github.com/quic-go/quic-go

// nopSender is a streamSender that ignores every event.
type nopSender struct{}

func (nopSender) onHasConnectionData()                                                {}
func (nopSender) onHasStreamData(protocol.StreamID, *SendStream)                      {}
func (nopSender) onHasStreamRetransmission(protocol.StreamID, *SendStream)            {}
func (nopSender) onHasStreamControlFrame(protocol.StreamID, streamControlFrameGetter) {}
func (nopSender) updateStreamPriority(protocol.StreamID)                              {}
func (nopSender) recordStreamPriorityUpdated(protocol.StreamID, int8, bool)           {}
func (nopSender) onStreamCompleted(protocol.StreamID)                                 {}
func (nopSender) onStreamCreditReleased(protocol.StreamID)                            {}

// newCondisTestStream is a send stream with windows far larger than any
// test writes.
func newCondisTestStream() *SendStream {
	const window = 1 << 40
	rtt := utils.NewRTTStats()
	cfc := newConnectionFlowController(window, window, nil, rtt, utils.DefaultLogger)
	cfc.UpdateSendWindow(window)
	fc := newStreamFlowController(4, cfc, window, window, window, rtt, utils.DefaultLogger)
	return newSendStream(context.Background(), 4, nopSender{}, fc, false)
}

// burst writes n messages of size octets with TryWriteAll (more than a
// packet's worth, so that they queue in a non-pooled frame) and pops them
// in packet-sized frames, checking that the octets come out in order.
func burst(t testing.TB, s *SendStream, n, size int, seq *byte) {
	var want []byte
	for range n {
		m := bytes.Repeat([]byte{*seq}, size)
		*seq++
		want = append(want, m...)
		if err := s.TryWriteAll(m); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for {
		f, _, more := s.popStreamFrame(1200, protocol.Version1)
		if f.Frame != nil {
			got = append(got, f.Frame.Data...)
			f.Frame.PutBack()
		}
		if !more {
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("popped %d octets, not the %d written in order", len(got), len(want))
	}
}

// TestCondisOverflowBufferReused: a burst of small writes larger than a
// packet is queued in a non-pooled frame; once it is sent, every later
// burst of that size is queued in the same frame and buffer instead of
// new ones. Upstream allocates a frame and grows a buffer for every burst.
// (Identity, not testing.AllocsPerRun: under -race sync.Pool drops frames
// at random, and the pooled frames then count as allocations.)
func TestCondisOverflowBufferReused(t *testing.T) {
	s := newCondisTestStream()
	var seq byte
	burst(t, s, 40, 100, &seq) // the first burst makes the buffer
	if s.spare == nil || s.spareFrame == nil || s.overflow != nil {
		t.Fatal("the sent overflow frame's buffer was not kept")
	}
	frame, buf := s.spareFrame, &s.spare[:1][0]
	for range 50 {
		burst(t, s, 40, 100, &seq)
		if s.spareFrame != frame || &s.spare[:1][0] != buf {
			t.Fatal("a burst was queued in a new frame or buffer, not the kept ones")
		}
	}
}

// TestCondisLargeBurstNotKept: a burst larger than maxSpare is sent
// whole, and its buffer is not kept for the stream's life.
func TestCondisLargeBurstNotKept(t *testing.T) {
	s := newCondisTestStream()
	var seq byte
	burst(t, s, 10, 200, &seq)
	burst(t, s, 100, maxSpare/50, &seq) // past maxSpare
	if s.spare != nil || s.spareFrame != nil {
		t.Fatalf("a %d-octet buffer was kept, more than maxSpare", cap(s.spare))
	}
	burst(t, s, 10, 200, &seq) // then small bursts work again
}
