package uni

import "testing"

func benchEncodeDecode(b *testing.B, m *Message) {
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		enc, err := m.Append(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		n = len(enc)
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(n))
}

// BenchmarkSetupEncodeDecode: a full SETUP (every IE) encoded into a reused
// buffer and decoded.
func BenchmarkSetupEncodeDecode(b *testing.B) {
	benchEncodeDecode(b, fixtures()[0].m)
}

// BenchmarkReleaseCompleteEncodeDecode: the golden RELEASE COMPLETE, the
// commonest short message.
func BenchmarkReleaseCompleteEncodeDecode(b *testing.B) {
	benchEncodeDecode(b, goldenReleaseCompleteMessage())
}

// BenchmarkSetupEncode: encoding alone, to show it allocates nothing.
func BenchmarkSetupEncode(b *testing.B) {
	m := fixtures()[0].m
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
