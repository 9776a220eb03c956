package mcm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

func mustPrefix(t testing.TB, s string) mcm.Prefix {
	t.Helper()
	p, err := mcm.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAddressOctets: an address is the 13 octets of the prefix, the 6 of
// the ESI and selector 0. The ESIs are the first 6 octets of
// `printf %s NAME | sha256sum` with bit 0x02 of octet 0 set and bit 0x01
// cleared, worked out by hand here.
func TestAddressOctets(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, node, want string
	}{
		// sha256("alpha") = 8ed3f6ad685b...: 0x8e already has 0x02 set and 0x01 clear.
		{"default ICD", "", "alpha", "47 9999 c0d1 0000 0000 0000 0000  8e d3 f6 ad 68 5b  00"},
		// sha256("beta") = f44e64e75f39...: 0xf4 gets 0x02, 0xf6.
		{"ICD", "47.0005.80ffe1000000f21a2b3c", "beta", "47 0005 80ffe1000000f21a2b3c  f6 4e 64 e7 5f 39  00"},
		// sha256("n795505") = c7053aa2c7ef...: 0xc7 loses 0x01, 0xc6.
		{"DCC", "39 840f 80 ffe100 0000 0001 0002", "n795505", "39 840f 80ffe1000000000100 02  c6 05 3a a2 c7 ef  00"},
		{"E.164", "45 000012125551212f 00000001", "alpha", "45 000012125551212f 00000001  8e d3 f6 ad 68 5b  00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mcm.DefaultPrefix
			if tc.prefix != "" {
				p = mustPrefix(t, strings.ReplaceAll(tc.prefix, " ", ""))
			}
			a := mcm.Address(p, tc.node)
			want := unhex(t, tc.want)
			if len(want) != uni.AESALen {
				t.Fatalf("want has %d octets", len(want))
			}
			for i := range a {
				if a[i] != want[i] {
					t.Errorf("octet %d = %02x, want %02x (address %v)", i, a[i], want[i], a)
				}
			}
			if e := mcm.ESI(tc.node); !bytes.Equal(e[:], want[13:19]) {
				t.Errorf("ESI(%q) = %x, want %x", tc.node, e, want[13:19])
			}
		})
	}
	if got := mcm.DefaultPrefix.String(); got != "479999c0d10000000000000000" {
		t.Errorf("DefaultPrefix = %s", got)
	}
	if err := mcm.DefaultPrefix.Check(); err != nil {
		t.Errorf("DefaultPrefix: %v", err)
	}
}

// TestESICollisions: two names share an ESI when the first 6 octets of
// their SHA-256 agree but for the two bits the ESI overrides, or agree
// outright (pairs found by search; config loading refuses them).
func TestESICollisions(t *testing.T) {
	for _, pair := range [][2]string{{"n753089", "n12280958"}, {"n795505", "n2441896"}} {
		if a, b := mcm.ESI(pair[0]), mcm.ESI(pair[1]); a != b {
			t.Errorf("ESI(%s) = %x, ESI(%s) = %x: want equal", pair[0], a, pair[1], b)
		}
	}
	if a, b := mcm.ESI("alpha"), mcm.ESI("beta"); a == b {
		t.Errorf("alpha and beta share ESI %x", a)
	}
}

func TestParsePrefix(t *testing.T) {
	for _, s := range []string{
		"479999c0d10000000000000000",
		"47.9999.C0D1.0000.0000.0000.0000",
		"47.0000.ffffffffffffffffffff",
		"39.840f.80ffe10000000000ab00",
		"39.999f.00000000000000000000",
		"45.000000000000001f.ffffffff",
		"45.999999999999999f.00000000",
	} {
		p, err := mcm.ParsePrefix(s)
		if err != nil {
			t.Errorf("ParsePrefix(%q): %v", s, err)
			continue
		}
		if got, want := p.String(), strings.ToLower(strings.ReplaceAll(s, ".", "")); got != want {
			t.Errorf("ParsePrefix(%q) = %s", s, got)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"4999990000000000000000000000", `mcm: "4999990000000000000000000000" has 28 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"479999c0d1", `mcm: "479999c0d1" has 10 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"", `mcm: "" has 0 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"47 9999c0d10000000000000000", `mcm: "47 9999c0d10000000000000000": ' ' is not a hex digit (want 26 hex digits, AFI first)`},
		{"479999c0d1000000000000000g", `mcm: "479999c0d1000000000000000g": 'g' is not a hex digit (want 26 hex digits, AFI first)`},
		{"499999c0d10000000000000000", "mcm: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"c59999c0d10000000000000000", "mcm: AFI c5 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"00000000000000000000000000", "mcm: AFI 00 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"479a99c0d10000000000000000", "mcm: ICD 9a99 is not 4 decimal digits"},
		{"39840080ffe100000000000000", "mcm: DCC 8400 is not 3 decimal digits and a final f (e.g. 840f)"},
		{"398f0f80ffe100000000000000", "mcm: DCC 8f0f is not 3 decimal digits and a final f (e.g. 840f)"},
		{"450000000000000001ffffffff", "mcm: E.164 IDI 0000000000000001 is not 15 decimal digits (leading zeros pad the number) and a final f"},
		{"45f00000000000001fffffffff", "mcm: E.164 IDI f00000000000001f is not 15 decimal digits (leading zeros pad the number) and a final f"},
	} {
		_, err := mcm.ParsePrefix(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParsePrefix(%q):\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

// TestNewRefusesBadPrefix: an MCM is not made with a prefix UNI 3.1 does
// not define, for itself or for a peer.
func TestNewRefusesBadPrefix(t *testing.T) {
	bad := mcm.Prefix{0x49, 0x99, 0x99}
	for _, tc := range []struct {
		cfg  mcm.Config
		want string
	}{
		{mcm.Config{Name: "a", AddressPrefix: bad}, "mcm: AddressPrefix: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{mcm.Config{Name: "a", PeerPrefixes: map[string]mcm.Prefix{"b": bad}}, `mcm: PeerPrefixes["b"]: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)`},
	} {
		m := ndis.New(ndis.Options{Name: "a"})
		d, err := mcm.New(m, tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("New: %v\nwant %s", err, tc.want)
		}
		if d != nil {
			t.Error("New returned an MCM with its error")
		}
		if s := m.Snapshot(); len(s.Adapters) != 0 {
			t.Errorf("adapter left behind: %+v", s.Adapters)
		}
	}
}

// TestCallWithPrefix: two nodes sharing a prefix make a call; the SETUP
// carries the callee's address (prefix + ESI(callee) + 0) as Called Party
// Number and the caller's as Calling Party Number, and Wireshark's Q.2931
// dissector decodes both as the UNI 3.1 format the prefix has.
func TestCallWithPrefix(t *testing.T) {
	type setup struct {
		name           string
		prefix         mcm.Prefix
		wire           []byte
		called, caller uni.AESA
	}
	var setups []setup
	for _, tc := range []struct {
		name   string
		prefix string // "": the default
	}{
		{"default ICD", ""},
		{"DCC", "39.840f.80ffe1.0000.0000.0001.00"},
		{"E.164", "45.000012125551212f.00000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := mcm.DefaultPrefix
			if tc.prefix != "" {
				prefix = mustPrefix(t, tc.prefix)
			}
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				adjust := func(c *mcm.Config) {
					if tc.prefix != "" {
						c.AddressPrefix = prefix
					}
				}
				a, b := w.addNode("a", adjust), w.addNode("b", adjust)
				if got, want := b.d.Address(), mcm.Address(prefix, "b"); got != want {
					t.Errorf("b's address %v, want %v", got, want)
				}
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "echo")
				sm := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
				va, vb := w.connect(ca, cb, mcm.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
				m, ok := sm()
				if !ok {
					t.Fatal("no SETUP captured")
				}
				called, ok1 := m.Called.AESA()
				caller, ok2 := m.Calling.AESA()
				if !ok1 || !ok2 || called != mcm.Address(prefix, "b") || caller != mcm.Address(prefix, "a") {
					t.Errorf("SETUP called %v, calling %v; want %v, %v", m.Called, m.Calling, mcm.Address(prefix, "b"), mcm.Address(prefix, "a"))
				}
				wire, err := m.Encode()
				if err != nil {
					t.Fatal(err)
				}
				setups = append(setups, setup{tc.name, prefix, wire, called, caller})
				w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
			})
		})
	}
	if t.Failed() {
		return
	}
	pkts := tsharkPackets(t, func() [][]byte {
		var w [][]byte
		for _, s := range setups {
			w = append(w, s.wire)
		}
		return w
	}())
	for i, s := range setups {
		numbers := pkts[i].numbers()
		if len(numbers) != 2 {
			t.Errorf("%s: tshark shows %d party numbers, want 2", s.name, len(numbers))
			continue
		}
		for j, a := range []uni.AESA{s.called, s.caller} {
			checkNumber(t, s.name, numbers[j], a)
		}
	}
}

// TestPeerPrefix: a peer whose prefix differs from this node's is called at
// the address its prefix gives, named in Config.PeerPrefixes; without it
// the SETUP names an address the peer does not have, and the peer refuses
// the call with cause 88.
func TestPeerPrefix(t *testing.T) {
	bp := mcm.Prefix{mcm.AFIDCC, 0x84, 0x0F, 0x80, 0xFF, 0xE1}
	for _, tc := range []struct {
		name  string
		known bool
		want  ndis.Status
	}{
		{"prefix configured", true, ndis.StatusSuccess},
		{"prefix not configured", false, ndis.StatusInvalidSap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				a := w.addNode("a", func(c *mcm.Config) {
					if tc.known {
						c.PeerPrefixes = map[string]mcm.Prefix{"b": bp}
					}
				})
				b := w.addNode("b", func(c *mcm.Config) { c.AddressPrefix = bp })
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "echo")
				sm := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
				rc := capture(w, sim.From("b", sim.MsgType(uni.MsgReleaseComplete)))
				v := w.call(ca, mcm.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
				if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != tc.want {
					t.Errorf("MakeCall: %v, want %v", r, tc.want)
				}
				m, ok := sm()
				if !ok {
					t.Fatal("no SETUP")
				}
				wantCalled := mcm.Address(mcm.DefaultPrefix, "b")
				if tc.known {
					wantCalled = mcm.Address(bp, "b")
				}
				if called, _ := m.Called.AESA(); called != wantCalled {
					t.Errorf("SETUP to %v, want %v", called, wantCalled)
				}
				if caller, _ := m.Calling.AESA(); caller != mcm.Address(mcm.DefaultPrefix, "a") {
					t.Errorf("SETUP from %v, want a's own address", caller)
				}
				if tc.known {
					w.hangUp(ca, v, cb, cb.LastIncoming(), ndis.StatusSuccess)
					return
				}
				rel, ok := rc()
				if !ok || causeOf(rel) != uni.CauseIncompatibleDestination {
					t.Errorf("b's RELEASE COMPLETE %+v, want cause 88", rel)
				}
				if n := len(cb.Incoming()); n != 0 {
					t.Errorf("b's client was offered %d call(s)", n)
				}
				if st := ca.DeleteVc(v); st != ndis.StatusSuccess {
					t.Errorf("DeleteVc: %v", st)
				}
			})
		})
	}
}

// ---- Wireshark ----

// pdml is a PDML <packet>, <proto> or <field>.
type pdml struct {
	Name     string `xml:"name,attr"`
	Show     string `xml:"show,attr"`
	ShowName string `xml:"showname,attr"`
	Value    string `xml:"value,attr"`
	Fields   []pdml `xml:"field"`
	Protos   []pdml `xml:"proto"`
}

// numbers returns the "Number" items of the packet's Called and Calling
// Party Number IEs, in order.
func (n *pdml) numbers() []*pdml {
	var out []*pdml
	var walk func(n *pdml)
	walk = func(n *pdml) {
		for i := range n.Protos {
			walk(&n.Protos[i])
		}
		for i := range n.Fields {
			f := &n.Fields[i]
			if f.Name == "" && f.Show == "Number" {
				out = append(out, f)
				continue
			}
			walk(f)
		}
	}
	walk(n)
	return out
}

// tsharkPackets has tshark (Wireshark's Q.2931 dissector) decode the
// messages; it skips the test when tshark is not installed.
func tsharkPackets(t *testing.T, msgs [][]byte) []pdml {
	t.Helper()
	tshark := tsharktest.Path(t, "addresses")
	file, _ := tsharktest.WriteMessages(t, msgs)
	var doc struct {
		Packets []pdml `xml:"packet"`
	}
	if err := xml.Unmarshal(tsharktest.Run(t, tshark, "-r", file, "-T", "pdml"), &doc); err != nil {
		t.Fatalf("tshark's PDML: %v", err)
	}
	if len(doc.Packets) != len(msgs) {
		t.Fatalf("tshark shows %d packets, wrote %d", len(doc.Packets), len(msgs))
	}
	return doc.Packets
}

// checkNumber checks that tshark decoded a party number as the UNI 3.1
// format of a: AFI, IDI (ICD, DCC or E.164 number), HO-DSP, ESI,
// selector, and flagged nothing.
func checkNumber(t *testing.T, name string, n *pdml, a uni.AESA) {
	t.Helper()
	idi := map[byte]struct {
		field string
		len   int
	}{
		mcm.AFIICD:  {"arp.src.atm_international_code_designator", 2},
		mcm.AFIDCC:  {"arp.src.atm_data_country_code", 2},
		mcm.AFIE164: {"arp.src.atm_e.164_isdn", 8},
	}[a[0]]
	want := []struct{ field, value string }{
		{"arp.src.atm_afi", hex.EncodeToString(a[:1])},
		{idi.field, hex.EncodeToString(a[1 : 1+idi.len])},
		{"arp.src.atm_high_order_dsp", hex.EncodeToString(a[1+idi.len : 13])},
		{"arp.src.atm_end_system_identifier", hex.EncodeToString(a[13:19])},
		{"arp.src.atm_selector", hex.EncodeToString(a[19:])},
	}
	var got []string
	for _, f := range n.Fields {
		got = append(got, f.Name+"="+f.Value)
	}
	var exp []string
	for _, w := range want {
		exp = append(exp, w.field+"="+w.value)
	}
	if strings.Join(got, " ") != strings.Join(exp, " ") {
		t.Errorf("%s: tshark decodes %v as\n %v\nwant\n %v", name, a, got, exp)
	}
}
