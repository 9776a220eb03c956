package uni

import (
	"runtime"
	"strconv"
	"testing"
)

// benchCall runs one call from a to b and back to U0 on both: setup,
// connect, release. With wire set, every message goes through the codec.
func benchCall(b *testing.B, a, z *Link, wire bool, buf []byte) []byte {
	deliver := func(to *Link, o Output) Output {
		if len(o.Messages) != 1 {
			b.Fatalf("expected one message, got %v", msgTypes(o))
		}
		m := o.Messages[0].Msg
		if !wire {
			return to.Receive(m)
		}
		var err error
		buf, err = m.Append(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		return to.ReceiveBytes(buf)
	}
	held := a.Calls()
	id, o, err := a.Setup(setupMsg(false))
	if err != nil {
		b.Fatal(err)
	}
	in := deliver(z, o).Indications[0].Call
	o, _ = z.Accept(in, nil)
	o = deliver(a, o) // CONNECT → CONNECT ACK
	deliver(z, o)     // CONNECT ACK
	o, _ = a.Release(id, NewCause(CauseNormalCallClearing))
	deliver(z, o) // RELEASE → U12
	o, _ = z.Release(in, NewCause(CauseNormalCallClearing))
	deliver(a, o) // RELEASE COMPLETE
	if a.Calls() != held || z.Calls() != held {
		b.Fatalf("calls left: %d, %d, want %d", a.Calls(), z.Calls(), held)
	}
	return buf
}

// BenchmarkCallLifecycle: one whole call across two Links (both ends'
// work), messages handed over as values.
func BenchmarkCallLifecycle(b *testing.B) {
	a, z := NewLink(Config{}), NewLink(Config{})
	b.ReportAllocs()
	for b.Loop() {
		benchCall(b, a, z, false, nil)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCallLifecycleWire: the same with every message encoded and
// decoded.
func BenchmarkCallLifecycleWire(b *testing.B) {
	a, z := NewLink(Config{}), NewLink(Config{})
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = benchCall(b, a, z, true, buf)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCallLifecycleWireReuse: BenchmarkCallLifecycleWire with
// Links that reuse their Output storage (Config.ReuseOutputs), as
// callctl's do: every Output is carried out before the next input.
func BenchmarkCallLifecycleWireReuse(b *testing.B) {
	cfg := Config{ReuseOutputs: true}
	a, z := NewLink(cfg), NewLink(cfg)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = benchCall(b, a, z, true, buf)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkHeldCalls: whole calls over the wire (as
// BenchmarkCallLifecycleWire) while the two Links hold N active calls,
// and the live heap each held call costs a Link (one side of the call,
// so one node's share): after a full collection, the heap with the calls
// minus the heap without, over N. Compare calls/s between the N.
func BenchmarkHeldCalls(b *testing.B) { benchHeldCalls(b, Config{}) }

// BenchmarkHeldCallsReuse: BenchmarkHeldCalls with Links that reuse
// their Output storage (Config.ReuseOutputs), as callctl's do.
func BenchmarkHeldCallsReuse(b *testing.B) { benchHeldCalls(b, Config{ReuseOutputs: true}) }

func benchHeldCalls(b *testing.B, cfg Config) {
	for _, n := range []int{0, 10000, 100000} {
		b.Run("calls="+strconv.Itoa(n), func(b *testing.B) {
			a, z := NewLink(cfg), NewLink(cfg)
			buf := make([]byte, 0, 512)
			buf = benchCall(b, a, z, true, buf) // the Decoders' storage
			before := liveHeap()
			for range n {
				buf = holdCall(b, a, z, buf)
			}
			perCall := float64(liveHeap()-before) / float64(2*max(n, 1))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				buf = benchCall(b, a, z, true, buf)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			if n > 0 {
				b.ReportMetric(perCall, "heap-B/call/link")
			}
			runtime.KeepAlive(a)
			runtime.KeepAlive(z)
		})
	}
}

// holdCall sets up one call from a to z over the wire and leaves it
// active on both.
func holdCall(b *testing.B, a, z *Link, buf []byte) []byte {
	deliver := func(to *Link, o Output) Output {
		var err error
		if buf, err = o.Messages[0].Msg.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
		return to.ReceiveBytes(buf)
	}
	_, o, err := a.Setup(setupMsg(false))
	if err != nil {
		b.Fatal(err)
	}
	in := deliver(z, o).Indications[0].Call
	o, _ = z.Accept(in, nil)
	if o := deliver(z, deliver(a, o)); len(o.Indications) != 1 || o.Indications[0].Kind != IndConnected {
		b.Fatalf("CONNECT ACKNOWLEDGE: %v, want connected", o.Indications)
	}
	return buf
}

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
