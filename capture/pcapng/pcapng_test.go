package pcapng_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/capture/pcapng"
	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/uni"
)

// block is one pcapng block as the test reads it back.
type block struct {
	typ  uint32
	body []byte // between the leading length and the trailing one
}

// readBlocks splits a little-endian pcapng file into blocks, checking
// that each block's two lengths agree and are multiples of 4.
func readBlocks(t *testing.T, b []byte) []block {
	t.Helper()
	var out []block
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d octets left, too few for a block", len(b))
		}
		n := binary.LittleEndian.Uint32(b[4:])
		if n%4 != 0 || int(n) > len(b) || n < 12 {
			t.Fatalf("block length %d (%d octets left)", n, len(b))
		}
		if tail := binary.LittleEndian.Uint32(b[n-4:]); tail != n {
			t.Fatalf("block length %d at the start, %d at the end", n, tail)
		}
		out = append(out, block{binary.LittleEndian.Uint32(b), b[8 : n-4]})
		b = b[n:]
	}
	return out
}

// options parses a block's options into code -> values.
func options(t *testing.T, b []byte) map[uint16][][]byte {
	t.Helper()
	opts := map[uint16][][]byte{}
	for {
		if len(b) < 4 {
			t.Fatalf("options end without opt_endofopt")
		}
		code, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if code == 0 {
			if n != 0 || len(b) != 4 {
				t.Fatalf("opt_endofopt of length %d, then %d octets", n, len(b)-4)
			}
			return opts
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			t.Fatalf("option %d of %d octets overruns the block", code, n)
		}
		opts[code] = append(opts[code], b[4:4+n])
		b = b[4+padded:]
	}
}

func TestFileLayout(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapng.NewWriter(&buf, "condis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapng.Interface{LinkType: 252, Name: "condis:alpha", Description: "Q.2931 of alpha"}); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_700_000_000, 123_456_789)
	packets := []pcapng.Packet{
		{Time: ts, Data: []byte{1, 2, 3, 4, 5}, Direction: pcapng.Outbound, Comment: "alpha -> beta"},
		{Time: ts.Add(time.Nanosecond), Data: []byte{9, 8, 7, 6}, Direction: pcapng.Inbound},
		{Time: ts, Data: []byte{0xaa}},
	}
	for _, p := range packets {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%d octets written before Flush", buf.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	blocks := readBlocks(t, buf.Bytes())
	if len(blocks) != 2+len(packets) {
		t.Fatalf("%d blocks, want a section header, an interface and %d packets", len(blocks), len(packets))
	}

	shb := blocks[0]
	if shb.typ != 0x0A0D0D0A {
		t.Fatalf("first block of type %#x, want a section header", shb.typ)
	}
	if got, want := hex.EncodeToString(shb.body[:16]), "4d3c2b1a01000000ffffffffffffffff"; got != want {
		t.Errorf("section header %s, want %s (byte-order magic, version 1.0, length unknown)", got, want)
	}
	if app := options(t, shb.body[16:])[4]; len(app) != 1 || string(app[0]) != "condis" {
		t.Errorf("shb_userappl %q", app)
	}

	idb := blocks[1]
	if idb.typ != 1 {
		t.Fatalf("second block of type %#x, want an interface description", idb.typ)
	}
	if lt := binary.LittleEndian.Uint16(idb.body); lt != 252 {
		t.Errorf("link type %d", lt)
	}
	if snap := binary.LittleEndian.Uint32(idb.body[4:]); snap != 0 {
		t.Errorf("snaplen %d, want 0 (no limit)", snap)
	}
	io := options(t, idb.body[8:])
	for code, want := range map[uint16]string{2: "condis:alpha", 3: "Q.2931 of alpha", 9: "\x09"} {
		if v := io[code]; len(v) != 1 || string(v[0]) != want {
			t.Errorf("interface option %d: %q, want %q", code, v, want)
		}
	}

	for i, p := range packets {
		b := blocks[2+i]
		if b.typ != 6 {
			t.Fatalf("packet %d: block of type %#x, want an enhanced packet block", i, b.typ)
		}
		le := binary.LittleEndian
		if id := le.Uint32(b.body); id != 0 {
			t.Errorf("packet %d: interface %d", i, id)
		}
		ns := uint64(le.Uint32(b.body[4:]))<<32 | uint64(le.Uint32(b.body[8:]))
		if ns != uint64(p.Time.UnixNano()) {
			t.Errorf("packet %d: time %d ns, want %d", i, ns, p.Time.UnixNano())
		}
		capLen, origLen := le.Uint32(b.body[12:]), le.Uint32(b.body[16:])
		if int(capLen) != len(p.Data) || int(origLen) != len(p.Data) {
			t.Errorf("packet %d: lengths %d/%d, want %d", i, capLen, origLen, len(p.Data))
		}
		end := 20 + (len(p.Data)+3)&^3
		if !bytes.Equal(b.body[20:20+len(p.Data)], p.Data) || !bytes.Equal(b.body[20+len(p.Data):end], make([]byte, end-20-len(p.Data))) {
			t.Errorf("packet %d: data %x, want %x padded with zeros", i, b.body[20:end], p.Data)
		}
		if p.Comment == "" && p.Direction == pcapng.Unknown {
			if len(b.body) != end {
				t.Errorf("packet %d: %d octets of options, want none", i, len(b.body)-end)
			}
			continue
		}
		o := options(t, b.body[end:])
		if c := o[1]; (p.Comment != "") != (len(c) == 1) || len(c) == 1 && string(c[0]) != p.Comment {
			t.Errorf("packet %d: comment %q, want %q", i, c, p.Comment)
		}
		if f := o[2]; len(f) != 1 || le.Uint32(f[0]) != uint32(p.Direction) {
			t.Errorf("packet %d: epb_flags %x, want direction %d", i, f, p.Direction)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapng.NewWriter(&buf, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(pcapng.Packet{Data: []byte{1}}); err == nil || !strings.Contains(err.Error(), "interface 0 not added") {
		t.Errorf("a packet on no interface: %v", err)
	}
	if _, err := w.AddInterface(pcapng.Interface{LinkType: 252}); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(pcapng.Packet{Data: make([]byte, 1<<24+1)}); err == nil {
		t.Error("a packet larger than a block may be was written")
	}
	if _, err := (pcapng.UpperPDU{}).Append(nil, []byte{1}); err == nil {
		t.Error("an exported PDU with no dissector was built")
	}
}

func TestUpperPDUTags(t *testing.T) {
	pdu := []byte{0x09, 0x03}
	for _, tc := range []struct {
		name string
		u    pcapng.UpperPDU
		want string // tags, hex
	}{
		{"IPv4 with ports, sent", pcapng.UpperPDU{Dissector: "q2931",
			Src: netip.MustParseAddrPort("192.0.2.1:4800"), Dst: netip.MustParseAddrPort("192.0.2.2:4801"), Direction: pcapng.Outbound},
			"000c0008" + hex.EncodeToString([]byte("q2931\x00\x00\x00")) +
				"00140004c0000201" + "00150004c0000202" +
				"0018000400000003" + "00190004000012c0" + "001a0004000012c1" +
				"0023000400000000" + "00000000"},
		{"IPv6 received, no ports", pcapng.UpperPDU{Dissector: "q2931",
			Src: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 0), Dst: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::2"), 0), Direction: pcapng.Inbound},
			"000c0008" + hex.EncodeToString([]byte("q2931\x00\x00\x00")) +
				"00160010" + "20010db8000000000000000000000001" + "00170010" + "20010db8000000000000000000000002" +
				"0023000400000001" + "00000000"},
		{"IPv4-mapped IPv6 is IPv4", pcapng.UpperPDU{Dissector: "sip",
			Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2")},
			"000c0004" + hex.EncodeToString([]byte("sip\x00")) +
				"001400040a000001" + "001500040a000002" +
				"0018000400000003" + "0019000400000001" + "001a000400000002" + "00000000"},
		{"mixed families: no addresses", pcapng.UpperPDU{Dissector: "q2931",
			Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:2")},
			"000c0008" + hex.EncodeToString([]byte("q2931\x00\x00\x00")) + "00000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.u.Append([]byte{0xee}, pdu)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ee" + tc.want + "0903"; hex.EncodeToString(got) != want {
				t.Errorf("got  %x\nwant %s", got, want)
			}
		})
	}
}

// releaseComplete is a RELEASE COMPLETE with cause 16, call reference ref.
func releaseComplete(t *testing.T, ref uint32) []byte {
	t.Helper()
	m := &uni.Message{Type: uni.MsgReleaseComplete, CallRef: uni.CallRef{Value: ref},
		Causes: []uni.CauseIE{uni.NewCause(uni.CauseNormalCallClearing)}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTsharkDecodesUpperPDU: tshark, with no preference set, hands an
// exported PDU to the q2931 dissector and shows its tags: addresses,
// ports, direction, and the packet's comment and flags.
func TestTsharkDecodesUpperPDU(t *testing.T) {
	tshark := tsharktest.Path(t, "the exported-PDU capture format")
	file := filepath.Join(t.TempDir(), "x.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapng.NewWriter(f, "condis")
	if err == nil {
		_, err = w.AddInterface(pcapng.Interface{LinkType: pcapng.LinkTypeUpperPDU, Name: "condis:alpha"})
	}
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddrPort("127.0.0.1:4800"), netip.MustParseAddrPort("127.0.0.2:4801")
	for i, p := range []struct {
		src, dst netip.AddrPort
		dir      pcapng.Direction
		comment  string
	}{{a, b, pcapng.Outbound, "alpha -> beta"}, {b, a, pcapng.Inbound, "alpha <- beta"}} {
		data, err := pcapng.UpperPDU{Dissector: "q2931", Src: p.src, Dst: p.dst, Direction: p.dir}.Append(nil, releaseComplete(t, uint32(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(pcapng.Packet{Time: time.Unix(int64(i), 0), Data: data, Direction: p.dir, Comment: p.comment}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := tsharktest.Run(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "frame.protocols", "-e", "exported_pdu.ipv4_src", "-e", "exported_pdu.ipv4_dst",
		"-e", "exported_pdu.src_port", "-e", "exported_pdu.dst_port", "-e", "frame.p2p_dir",
		"-e", "frame.packet_flags_direction", "-e", "frame.comment", "-e", "frame.interface_name",
		"-e", "q2931.message_type", "-e", "q2931.call_ref", "-e", "q2931.cause.value")
	want := "exported_pdu:q2931|127.0.0.1|127.0.0.2|4800|4801|0|0x00000002|alpha -> beta|condis:alpha|0x5a|000001|0x10\n" +
		"exported_pdu:q2931|127.0.0.2|127.0.0.1|4801|4800|1|0x00000001|alpha <- beta|condis:alpha|0x5a|000002|0x10\n"
	if string(out) != want {
		t.Errorf("tshark shows\n%swant\n%s", out, want)
	}
}

// TestTsharkUser0Fallback keeps docs/protocol.md §8's fallback recipe
// true: raw messages on LINKTYPE_USER0 decode as Q.2931 once the user DLT
// table maps 147 to q2931, and not without it.
func TestTsharkUser0Fallback(t *testing.T) {
	tshark := tsharktest.Path(t, "the DLT_USER0 capture recipe")
	var buf bytes.Buffer
	w, err := pcapng.NewWriter(&buf, "")
	if err == nil {
		_, err = w.AddInterface(pcapng.Interface{LinkType: pcapng.LinkTypeUser0})
	}
	if err == nil {
		err = w.WritePacket(pcapng.Packet{Time: time.Unix(1, 0), Data: releaseComplete(t, 7)})
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "user0.pcapng")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fields := []string{"-T", "fields", "-e", "q2931.message_type", "-e", "q2931.cause.value"}
	if out := tsharktest.Run(t, tshark, append([]string{"-r", file}, fields...)...); strings.TrimSpace(string(out)) != "" {
		t.Errorf("without the user DLT table tshark decodes %q", out)
	}
	out := tsharktest.Run(t, tshark, append([]string{"-r", file, "-o", `uat:user_dlts:"User 0 (DLT=147)","q2931","0","","0",""`}, fields...)...)
	if string(out) != "0x5a\t0x10\n" {
		t.Errorf("with the recipe tshark shows %q, want a RELEASE COMPLETE with cause 16", out)
	}
}
