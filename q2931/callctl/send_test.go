package callctl

import (
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/condis-project/condis/internal/racedetect"
	"github.com/condis-project/condis/uni"
)

// sendOwner is an Owner for a Core whose associations only answer
// signalling: nothing in it is called but SentLocked and Go.
type sendOwner struct{ sent int }

func (o *sendOwner) NewVc(r Vc) *Vc                       { panic("no VCs here") }
func (o *sendOwner) AssocLocked(node string) *Assoc       { panic("no calls here") }
func (o *sendOwner) DialLocked(a *Assoc)                  {}
func (o *sendOwner) DatagramLimit(a *Assoc) DatagramLimit { return nil }
func (o *sendOwner) PeerAddress(a *Assoc) *uni.AESA       { return nil }
func (o *sendOwner) RefusedLocked(a *Assoc)               {}
func (o *sendOwner) SentLocked(a *Assoc, b []byte)        { o.sent++ }
func (o *sendOwner) Go(f func()) bool                     { go f(); return true }

// checkSig is a SignallingLink that checks, as each message is sent, that
// it is the RELEASE COMPLETE answering the next of the RELEASEs the test sent
// (call references 1, 2, …, in order), and keeps nothing.
type checkSig struct {
	t    *testing.T
	dec  uni.Decoder
	next uint32
	bad  int
}

func (s *checkSig) Send(b []byte) error {
	m, err := s.dec.Decode(b)
	if err != nil || m.Type != uni.MsgReleaseComplete || m.CallRef.Value != s.next+1 {
		if s.bad++; s.bad < 5 {
			s.t.Errorf("sent % x (%v), want RELEASE COMPLETE for call reference %d", b, err, s.next+1)
		}
	}
	s.next++
	return nil
}

// strayRelease is the peer's RELEASE of call reference ref, which this
// side does not know: it answers RELEASE COMPLETE.
func strayRelease(t *testing.T, ref uint32) []byte {
	m := &uni.Message{Type: uni.MsgRelease, CallRef: uni.CallRef{Value: ref}, Causes: []uni.CauseIE{uni.NewCause(uni.CauseNormalCallClearing)}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newSendCore(t *testing.T) (*Core, *Assoc, *checkSig, *sync.Mutex) {
	var mu sync.Mutex
	d := NewCore(&sendOwner{}, &mu, Config{Name: "alpha"})
	var a *Assoc
	a = d.NewAssoc("beta", nil, uni.Config{}, func(out uni.Output) { d.ApplyLocked(a, out) })
	sig := &checkSig{t: t}
	mu.Lock()
	a.LinkUp(sig, 1, func(uni.Output) {}) // its RESTART is not this test's
	a.StopTimers()
	mu.Unlock()
	return d, a, sig, &mu
}

// TestSignallingEncodedWithoutGarbage: the messages the core sends are
// encoded into buffers it reuses once they are sent, so answering the
// peer's signalling allocates nothing for the encodings (it was a share
// of a fresh block per message, kept by the outbox until garbage); every
// message the link is given is the right one, in order.
func TestSignallingEncodedWithoutGarbage(t *testing.T) {
	if racedetect.Enabled {
		t.Skip("the race detector changes allocations")
	}
	d, a, sig, mu := newSendCore(t)
	ins := make([][]byte, 3000)
	for i := range ins {
		ins[i] = strayRelease(t, uint32(i+1))
	}
	round := func(in []byte) {
		mu.Lock()
		d.ApplyLocked(a, a.Receive(in))
		mu.Unlock()
		d.Run()
	}
	for _, in := range ins[:1000] {
		round(in) // the buffers grow
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, in := range ins[1000:] {
		round(in)
	}
	runtime.ReadMemStats(&after)
	if perMsg := float64(after.TotalAlloc-before.TotalAlloc) / 2000; perMsg > 1 {
		t.Errorf("answering a RELEASE allocates %.1f bytes, want none", perMsg)
	}
	if sig.next != 3000 || sig.bad != 0 {
		t.Errorf("%d messages sent, %d wrong; want 3000 right", sig.next, sig.bad)
	}
}

// TestSignallingEncodingsWhileFlushing: while one goroutine's flush sends
// the outbox, others apply more Outputs into the next encoding buffer;
// every message sent is intact and in order (the race detector sees a
// buffer written while it is sent).
func TestSignallingEncodingsWhileFlushing(t *testing.T) {
	d, a, sig, mu := newSendCore(t)
	const n = 4000
	var ref uint32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				mu.Lock()
				if ref == n {
					mu.Unlock()
					return
				}
				ref++
				d.ApplyLocked(a, a.Receive(strayRelease(t, ref)))
				mu.Unlock()
				d.Run()
			}
		})
	}
	wg.Wait()
	d.Run()
	mu.Lock()
	defer mu.Unlock()
	if sig.next != n || sig.bad != 0 {
		t.Errorf("%d messages sent, %d wrong; want %d right", sig.next, sig.bad, n)
	}
}

// TestWorkItemSmall: a queued piece of mediator work stays small. What an
// incoming SETUP or CONNECT gives its handler (184 octets) is kept beside
// the queue, so a node releasing a million calls at once queues a million
// items of 136 octets, not 320 (its peak resident memory rose by a gigabyte
// when it was inline).
func TestWorkItemSmall(t *testing.T) {
	if n := unsafe.Sizeof(workItem{}); n > 136 {
		t.Errorf("a work item is %d octets, want at most 136", n)
	}
}

// recordSig is a SignallingLink that keeps a copy of every message sent.
type recordSig struct{ sent [][]byte }

func (s *recordSig) Send(b []byte) error {
	s.sent = append(s.sent, append([]byte(nil), b...))
	return nil
}

// TestSendsTheLinksEncoding: a message the Link already encoded to check
// a request (Outgoing.Enc) is sent as those octets, not encoded again;
// one without is encoded from the message.
func TestSendsTheLinksEncoding(t *testing.T) {
	var mu sync.Mutex
	d := NewCore(&sendOwner{}, &mu, Config{Name: "alpha"})
	var a *Assoc
	a = d.NewAssoc("beta", nil, uni.Config{}, func(out uni.Output) { d.ApplyLocked(a, out) })
	sig := &recordSig{}
	mu.Lock()
	a.LinkUp(sig, 1, func(uni.Output) {})
	a.StopTimers()
	mu.Unlock()
	d.Run()
	sig.sent = nil
	rel := &uni.Message{Type: uni.MsgRelease, CallRef: uni.CallRef{Value: 7}, Causes: []uni.CauseIE{uni.NewCause(uni.CauseNormalCallClearing)}}
	relEnc, err := rel.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// An encoding that is not the message's: only a copy of Enc sends it.
	other := strayRelease(t, 9)
	mu.Lock()
	d.ApplyLocked(a, uni.Output{Messages: []uni.Outgoing{{Msg: rel, Enc: other}, {Msg: rel}}})
	mu.Unlock()
	d.Run()
	if len(sig.sent) != 2 || string(sig.sent[0]) != string(other) || string(sig.sent[1]) != string(relEnc) {
		t.Fatalf("sent % x, want % x (the Link's encoding) then % x (the message encoded)", sig.sent, other, relEnc)
	}
}
