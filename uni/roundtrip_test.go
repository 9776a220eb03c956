package uni

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

// TestRoundTrip: decode(encode(m)) deep-equals m, and encoding the decoded
// message gives the same octets, for every message type with all its IEs.
func TestRoundTrip(t *testing.T) {
	for _, f := range append(fixtures(), extraFixtures()...) {
		t.Run(f.name, func(t *testing.T) {
			enc, err := f.m.Encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatalf("decode %x: %v", enc, err)
			}
			if !reflect.DeepEqual(got, f.m) {
				t.Fatalf("decode(encode(m)) != m\n got %+v\nwant %+v\nwire %x", *got, *f.m, enc)
			}
			again, err := got.Encode()
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs\nfirst  %x\nsecond %x", enc, again)
			}
		})
	}
}

// TestAppendDoesNotAllocate: encoding into a buffer with room is free, for
// every message type and the messages of every call.
func TestAppendDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 1024)
	for _, f := range append(fixtures(), commonMessages()...) {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := f.m.Append(buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Append allocates %.0f times", f.name, allocs)
		}
	}
}

// TestAppendKeepsPrefix: Append appends, and leaves the buffer alone on error.
func TestAppendKeepsPrefix(t *testing.T) {
	m := fixtures()[0].m
	prefix := []byte{0xde, 0xad}
	out, err := m.Append(append([]byte(nil), prefix...))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := m.Encode()
	if !bytes.Equal(out[:2], prefix) || !bytes.Equal(out[2:], enc) {
		t.Fatalf("Append(prefix) = %x, want %x%x", out, prefix, enc)
	}
	bad := *m
	bad.CallRef.Value = MaxCallRef + 1
	out, err = bad.Append(prefix)
	if err == nil || !bytes.Equal(out, prefix) {
		t.Fatalf("Append with bad call ref = %x, %v; want prefix unchanged and an error", out, err)
	}
}

// TestDecodeDoesNotRetainInput: decoded byte fields are copies.
func TestDecodeDoesNotRetainInput(t *testing.T) {
	enc, err := fixtures()[0].m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xff
	}
	if a, ok := m.Called.AESA(); !ok || a != aesaCallee {
		t.Fatalf("called address changed with the input buffer: %v", m.Called.Address)
	}
	if name, _ := m.BHLI.ServiceName(); name != "echo" {
		t.Fatalf("service name changed with the input buffer: %q", name)
	}

	// An optional IE kept raw because its contents are invalid, of a type
	// whose decoder keeps no octets (Endpoint State must be one octet).
	in := rawMessage(hdr(MsgStatus), ieCause16, ieBytes(IECallState, 0, 0x0a), ieBytes(IEEndpointState, 0, 0x0a, 0x0b))
	m, err = Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0xff
	}
	if len(m.Unrecognized) != 1 || !bytes.Equal(m.Unrecognized[0].Contents, []byte{0x0a, 0x0b}) {
		t.Fatalf("kept IE changed with the input buffer: %+v", m.Unrecognized)
	}
}

// TestDecodeAnyIEOrder: IEs may arrive in any order; the canonical
// re-encoding is the same.
func TestDecodeAnyIEOrder(t *testing.T) {
	m := fixtures()[0].m
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ies := splitIEs(t, enc[HeaderLen:])
	for i, j := 0, len(ies)-1; i < j; i, j = i+1, j-1 {
		ies[i], ies[j] = ies[j], ies[i]
	}
	// Reversing swaps the BLLI list order; restore it so the value compares.
	rev := rawMessage(enc[:HeaderLen], ies...)
	got, err := Decode(rev)
	if err != nil {
		t.Fatal(err)
	}
	got.BLLI[0], got.BLLI[2] = got.BLLI[2], got.BLLI[0]
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("reversed IE order decodes differently:\n got %+v\nwant %+v", *got, *m)
	}
}

// TestRepeatedIEIgnored: repetitions beyond the permitted count are dropped
// (Q.2931 error procedures), the first occurrence wins.
func TestRepeatedIEIgnored(t *testing.T) {
	first := ieBytes(IEEndpointRef, 0, 0x00, 0x00, 0x05)
	second := ieBytes(IEEndpointRef, 0, 0x00, 0x00, 0x09)
	got, err := Decode(rawMessage(hdr(MsgStatusEnquiry), first, second))
	if err != nil {
		t.Fatal(err)
	}
	if got.EndpointRef == nil || got.EndpointRef.Value != 5 || got.Unrecognized != nil {
		t.Fatalf("got endpoint ref %+v, unrecognized %+v; want value 5 and nothing kept", got.EndpointRef, got.Unrecognized)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{MsgSetup.String(), "SETUP"},
		{MsgModifyReject.String(), "MODIFY REJECT"},
		{MsgType(0x01).String(), "message type 0x01"},
		{CauseNormalCallClearing.String(), "normal call clearing (16)"},
		{CauseProtocolError.String(), "protocol error, unspecified (111)"},
		{Cause(126).String(), "cause 126"},
		{StateActive.String(), "U10 active"},
		{PartyDropPartyReceived.String(), "drop party received"},
		{IECalledParty.String(), "Called Party Number (0x70)"},
		{aesaCallee.String(), "47000580ffe1000000f21a2b3c.020012345678.00"},
		{CallRef{Value: 0x1234, Flag: true}.String(), "cr=0x1234/1"},
		{ActionReject.String(), "reject"},
		{LocUser.String(), "user"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// Every cause of field-notes §5.4 has a name.
	for _, c := range []Cause{1, 3, 16, 17, 18, 21, 22, 27, 28, 30, 31, 35, 36, 37, 41, 45, 47, 49, 57, 58, 63, 65,
		73, 78, 81, 82, 88, 89, 92, 93, 96, 97, 99, 100, 101, 102, 104, 111} {
		if _, ok := causeNames[c]; !ok {
			t.Errorf("cause %d has no name", c)
		}
	}
}

// hdr returns a header for call reference 1 with a zero length (rawMessage
// fixes the length).
func hdr(t MsgType) []byte {
	return []byte{0x09, 0x03, 0x00, 0x00, 0x01, byte(t), 0x80, 0x00, 0x00}
}

func ieBytes(id IEID, inst byte, contents ...byte) []byte {
	return append([]byte{byte(id), 0x80 | inst, byte(len(contents) >> 8), byte(len(contents))}, contents...)
}

// rawMessage joins a header and IEs and sets the message length.
func rawMessage(header []byte, ies ...[]byte) []byte {
	b := append([]byte(nil), header[:HeaderLen]...)
	for _, ie := range ies {
		b = append(b, ie...)
	}
	n := len(b) - HeaderLen
	b[7], b[8] = byte(n>>8), byte(n)
	return b
}

func splitIEs(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 4 {
			t.Fatalf("truncated IE in %s", hex.EncodeToString(body))
		}
		n := 4 + (int(body[2])<<8 | int(body[3]))
		out = append(out, append([]byte(nil), body[:n]...))
		body = body[n:]
	}
	return out
}
