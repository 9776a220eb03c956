package uni

import "testing"

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
	if a.Calls() != 0 || z.Calls() != 0 {
		b.Fatalf("calls left: %d, %d", a.Calls(), z.Calls())
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
