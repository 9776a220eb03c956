package uni

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/condis-project/condis/internal/racedetect"
)

// corpusInputs reads the committed fuzz corpus of FuzzDecode.
func corpusInputs(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fuzz corpus under testdata/fuzz/FuzzDecode: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
			!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a one-[]byte corpus file", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// reuseInputs are the messages the reuse tests decode: every fixture, the
// golden and the common messages, and the fuzz corpus.
func reuseInputs(t testing.TB) [][]byte {
	var out [][]byte
	for _, f := range append(append(fixtures(), extraFixtures()...), commonMessages()...) {
		b, err := f.m.Encode()
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		out = append(out, b)
	}
	return append(out, corpusInputs(t)...)
}

// damaged returns variants of b that decode differently or not at all:
// each octet after the header with its top bit flipped (extension bits,
// IE identifiers, lengths, instruction flags) and set to 0xff, and b cut
// short at each IE boundary with the length fixed.
func damaged(b []byte) [][]byte {
	var out [][]byte
	for i := HeaderLen; i < len(b); i++ {
		for _, v := range []byte{b[i] ^ 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] = v
			out = append(out, c)
		}
	}
	for off := HeaderLen; off+ieHeaderLen <= len(b); {
		off += ieHeaderLen + (int(b[off+2])<<8 | int(b[off+3]))
		if off >= len(b) {
			break
		}
		c := bytes.Clone(b[:off])
		c[7], c[8] = byte((off-HeaderLen)>>8), byte(off-HeaderLen)
		out = append(out, c)
	}
	return out
}

// checkReuse decodes b with dec, which has just decoded something else,
// and with Decode, and fails unless both give the same message and error.
func checkReuse(t testing.TB, dec *Decoder, prev, b []byte) {
	t.Helper()
	got, gerr := dec.Decode(b)
	want, werr := Decode(b)
	if !reflect.DeepEqual(gerr, werr) {
		t.Fatalf("after %x, Decoder.Decode(%x) error\n %v\nDecode's\n %v", prev, b, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after %x, Decoder.Decode(%x) =\n%s\nDecode gives\n%s", prev, b, dump(got), dump(want))
	}
}

// dump shows a message with the IEs its pointers point to.
func dump(m *Message) string {
	if m == nil {
		return "<nil>"
	}
	var s strings.Builder
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		fmt.Fprintf(&s, "  %s: %+v\n", v.Type().Field(i).Name, f.Interface())
	}
	return s.String()
}

// TestDecoderMatchesDecode: a Decoder that has decoded any other message
// (every fixture, the fuzz corpus, and damaged variants of them, which
// leave IEs half decoded, kept raw or rejected) decodes each one exactly as
// a fresh Decode does: no IE, slice element, raw IE or flag of the
// previous message survives.
func TestDecoderMatchesDecode(t *testing.T) {
	seeds := reuseInputs(t)
	var dec Decoder
	for _, prev := range seeds {
		for _, b := range seeds {
			dec.Decode(prev)
			checkReuse(t, &dec, prev, b)
		}
	}
	for _, s := range seeds {
		bad := damaged(s)
		for i, b := range bad {
			for _, prev := range append([][]byte{bad[(i+len(bad)-1)%len(bad)]}, seeds...) {
				dec.Decode(prev)
				checkReuse(t, &dec, prev, b)
			}
		}
	}
}

// TestDecoderDoesNotRetainInput: the Message a Decoder returns keeps no
// reference to the caller's buffer, which the caller may overwrite at once.
func TestDecoderDoesNotRetainInput(t *testing.T) {
	var dec Decoder
	for _, b := range reuseInputs(t) {
		want, werr := Decode(b)
		in := bytes.Clone(b)
		got, gerr := dec.Decode(in)
		for i := range in {
			in[i] = 0xa5
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gerr, werr) {
			t.Fatalf("overwriting the input changed the decoded message %x:\n%s\nwant\n%s", b, dump(got), dump(want))
		}
	}
}

// TestDecoderDoesNotAllocate: once a Decoder has seen each kind of
// message, decoding the messages of a call (and every fixture) allocates
// nothing.
func TestDecoderDoesNotAllocate(t *testing.T) {
	var wires [][]byte
	for _, f := range append(commonMessages(), append(fixtures(), extraFixtures()...)...) {
		b, err := f.m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		wires = append(wires, b)
	}
	var dec Decoder
	for _, b := range wires {
		if _, err := dec.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		for _, b := range wires {
			if _, err := dec.Decode(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("decoding %d messages into a warm Decoder allocates %.0f times", len(wires), allocs)
	}
}

// TestDecoderKeepsBoundedStorage: a long message does not pin a long buffer
// in the Decoder after the next one.
func TestDecoderKeepsBoundedStorage(t *testing.T) {
	long := &Message{Type: MsgReleaseComplete}
	for range 40 {
		long.Unrecognized = append(long.Unrecognized, RawIE{ID: 0x7f, Contents: make([]byte, 200), Cause: CauseIEUnknown})
	}
	b, err := long.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var dec Decoder
	if _, err := dec.Decode(b); err != nil {
		t.Fatal(err)
	}
	short, _ := goldenReleaseCompleteMessage().Encode()
	if _, err := dec.Decode(short); err != nil {
		t.Fatal(err)
	}
	if cap(dec.d.own) > maxKeptBody || cap(dec.d.raw) > maxKeptRaw {
		t.Fatalf("after a %d-octet message the Decoder keeps %d octets and room for %d raw IEs; want at most %d and %d",
			len(b), cap(dec.d.own), cap(dec.d.raw), maxKeptBody, maxKeptRaw)
	}
}

// TestEncodeExactLength: Encode's buffer is the message's length (rounded
// up to the allocator's size class at most), not a fixed-size buffer.
func TestEncodeExactLength(t *testing.T) {
	for _, f := range append(commonMessages(), fixtures()...) {
		b, err := f.m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if cap(b) >= len(b)+16 {
			t.Errorf("%s: Encode returns %d octets in a buffer of %d", f.name, len(b), cap(b))
		}
		if racedetect.Enabled {
			continue // the race detector's sync.Pool drops the scratch buffer at random
		}
		if allocs := testing.AllocsPerRun(20, func() { _, _ = f.m.Encode() }); allocs != 1 {
			t.Errorf("%s: Encode allocates %.0f times, want once (the result)", f.name, allocs)
		}
	}
	bad := &Message{Type: MsgType(0x01)}
	if b, err := bad.Encode(); b != nil || err == nil {
		t.Errorf("Encode of an unknown message type = %x, %v; want nil and an error", b, err)
	}
}

// memory lists the addresses of the memory m's pointers and slices refer
// to (IE structs, slice arrays), found by walking every field, so that a
// field added to Message or to an IE is covered without changing the test.
func memory(m *Message) map[uintptr]string {
	out := map[uintptr]string{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				out[v.Pointer()] = path
				walk(v.Elem(), path)
			}
		case reflect.Slice:
			if v.Cap() > 0 {
				out[v.Pointer()] = path
			}
			for i := range v.Len() {
				walk(v.Index(i), path+"["+strconv.Itoa(i)+"]")
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	}
	walk(reflect.ValueOf(m), "m")
	return out
}

// TestClone: a clone equals the message, shares no memory with it, and
// survives the Decoder decoding the next message.
func TestClone(t *testing.T) {
	all := append(append(fixtures(), extraFixtures()...), commonMessages()...)
	all = append(all, fixture{"empty slices", &Message{Type: MsgReleaseComplete, Causes: []CauseIE{}, BLLI: []BLLI{},
		Unrecognized: []RawIE{{ID: 0x7f, Contents: []byte{}}}}})
	all = append(all, fixture{"more IEs than a decoded message", &Message{Type: MsgSetup,
		Causes: []CauseIE{NewCause(1), NewCause(2), NewCause(3, 4)}, BLLI: []BLLI{UserL2(1), UserL2(2), UserL2(3), UserL2(4)}}})
	for _, f := range all {
		c := f.m.Clone()
		if !reflect.DeepEqual(c, f.m) {
			t.Fatalf("%s: clone differs:\n%s\nwant\n%s", f.name, dump(c), dump(f.m))
		}
		orig := memory(f.m)
		for p, path := range memory(c) {
			if q, ok := orig[p]; ok {
				t.Errorf("%s: clone's %s shares memory with the original's %s", f.name, path, q)
			}
		}
	}
	var dec Decoder
	wires := reuseInputs(t)
	for i, b := range wires {
		m, err := dec.Decode(b)
		if err != nil {
			continue
		}
		c := m.Clone()
		dec.Decode(wires[(i+1)%len(wires)])
		if want, _ := Decode(b); !reflect.DeepEqual(c, want) {
			t.Fatalf("clone of %x changed with the Decoder's next message:\n%s\nwant\n%s", b, dump(c), dump(want))
		}
	}
	// The messages of a call, decoded: one allocation each, their
	// addresses, service name and diagnostics included.
	ms := append(commonMessages(), fixture{"CONNECT ACKNOWLEDGE", &Message{Type: MsgConnectAck, CallRef: CallRef{Value: 1}}})
	for _, f := range ms {
		b, err := f.m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(20, func() { _ = m.Clone() }); allocs != 1 {
			t.Errorf("cloning a decoded %s allocates %.0f times, want 1", f.name, allocs)
		}
	}
}

// FuzzDecoderReuse: a Decoder that has decoded prev (any octets: a
// message, a damaged one, garbage) decodes b exactly as a fresh Decode
// does, and then prev again likewise. The seeds are every ordered pair of
// FuzzDecode's seeds, so the fuzzer starts from messages whose IEs differ.
func FuzzDecoderReuse(f *testing.F) {
	seeds := seedMessages(f)
	for _, prev := range seeds {
		for _, b := range seeds {
			f.Add(prev.wire, b.wire)
		}
	}
	f.Fuzz(func(t *testing.T, prev, b []byte) {
		var dec Decoder
		dec.Decode(prev)
		checkReuse(t, &dec, prev, b)
		checkReuse(t, &dec, b, prev)
	})
}

// TestDecodeAllocations: Decode allocates for each message only what its
// type carries: one object for a message of the call's clearing or
// connection, two for a SETUP (the message with its small IEs, the
// call-setup IEs; no copy of the body for the addresses and the service
// name).
func TestDecodeAllocations(t *testing.T) {
	want := map[string]float64{"SETUP": 2, "CONNECT": 1, "RELEASE": 1, "RELEASE_COMPLETE": 1, "CONNECT ACKNOWLEDGE": 1}
	ms := append(commonMessages(), fixture{"CONNECT ACKNOWLEDGE", &Message{Type: MsgConnectAck, CallRef: CallRef{Value: 1}}})
	for _, f := range ms {
		b, err := f.m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := Decode(b); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != want[f.name] {
			t.Errorf("Decode(%s) allocates %.0f times, want %.0f", f.name, allocs, want[f.name])
		}
	}
}
