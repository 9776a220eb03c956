package uni

import "testing"

// commonMessages are the messages of every call, as the call manager
// (mcm) builds them: a SETUP with the IEs newSetup and traffic fill (the
// golden SETUP: AAL5 with SDU sizes, best-effort traffic, BCOB-X, BHLI
// service name, BLLI, called and calling AESAs, QoS), the CONNECT
// connectMessage builds (AAL5 and the connection identifier), a RELEASE
// with normal clearing and a RELEASE COMPLETE with a cause.
func commonMessages() []fixture {
	return []fixture{
		{"SETUP", goldenSetupMessage()},
		{"CONNECT", &Message{Type: MsgConnect, CallRef: CallRef{Value: 1, Flag: true},
			AAL:          &AALParameters{Type: AAL5, FwdMaxSDU: Some(9188), BwdMaxSDU: Some(9188), SSCS: Some(SSCSNull)},
			ConnectionID: &ConnectionID{VPAssociated: VPExplicit, Exclusive: ExclusiveVCI, VPCI: 0, VCI: 0x0102}}},
		{"RELEASE", &Message{Type: MsgRelease, CallRef: CallRef{Value: 1},
			Causes: []CauseIE{NewCause(CauseNormalCallClearing)}}},
		{"RELEASE_COMPLETE", goldenReleaseCompleteMessage()},
	}
}

// BenchmarkDecode: Decode of each common message into a new Message.
func BenchmarkDecode(b *testing.B) {
	for _, f := range commonMessages() {
		wire, err := f.m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, err := Decode(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode: Encode of each common message into a new buffer.
func BenchmarkEncode(b *testing.B) {
	for _, f := range commonMessages() {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.m.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppend: each common message appended to a reused buffer.
func BenchmarkAppend(b *testing.B) {
	for _, f := range commonMessages() {
		b.Run(f.name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				out, err := f.m.Append(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				buf = out
			}
		})
	}
}

// BenchmarkDecoder: each common message decoded into a warm Decoder that
// decodes the messages of a call in turn, as a receiver does.
func BenchmarkDecoder(b *testing.B) {
	ms := commonMessages()
	wires := make([][]byte, len(ms))
	for i, f := range ms {
		w, err := f.m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		wires[i] = w
	}
	for i, f := range ms {
		b.Run(f.name, func(b *testing.B) {
			var dec Decoder
			for _, w := range wires { // every kind of message once: warm
				if _, err := dec.Decode(w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(wires[i])))
			for b.Loop() {
				if _, err := dec.Decode(wires[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCallMessages: the four common messages of one call, one op:
// what a call costs the codec on one side (the "per call" figure;
// CONNECT ACKNOWLEDGE, header only, is left out).
func BenchmarkCallMessages(b *testing.B) {
	ms := commonMessages()
	wires := make([][]byte, len(ms))
	for i, f := range ms {
		w, err := f.m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		wires[i] = w
	}
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, w := range wires {
				if _, err := Decode(w); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range ms {
				if _, err := f.m.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Append", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range ms {
				out, err := f.m.Append(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				buf = out
			}
		}
	})
	b.Run("Decoder", func(b *testing.B) {
		var dec Decoder
		b.ReportAllocs()
		for b.Loop() {
			for _, w := range wires {
				if _, err := dec.Decode(w); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
