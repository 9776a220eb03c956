package mcm_test

import (
	"encoding/hex"
	"encoding/xml"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestAddressOctets: an address is the 13 octets of the prefix, the 6 of
// the ESI and selector 0. The ESIs are the first 6 octets of
// `printf %s NAME | sha256sum` with bit 0x02 of octet 0 set and bit 0x01
// cleared, worked out by hand here.
// TestESICollisions: two names share an ESI when the first 6 octets of
// their SHA-256 agree but for the two bits the ESI overrides, or agree
// outright (pairs found by search; config loading refuses them).
// TestNewRefusesBadPrefix: an MCM is not made with a prefix UNI 3.1 does
// not define, for itself or for a peer.
func TestNewRefusesBadPrefix(t *testing.T) {
	bad := q2931.Prefix{0x49, 0x99, 0x99}
	for _, tc := range []struct {
		cfg  mcm.Config
		want string
	}{
		{mcm.Config{Name: "a", Policy: callctl.Policy{AddressPrefix: bad}}, "mcm: AddressPrefix: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{mcm.Config{Name: "a", Policy: callctl.Policy{PeerPrefixes: map[string]q2931.Prefix{"b": bad}}}, `mcm: PeerPrefixes["b"]: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)`},
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
		prefix         q2931.Prefix
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
			prefix := q2931.DefaultPrefix
			if tc.prefix != "" {
				var err error
				if prefix, err = q2931.ParsePrefix(tc.prefix); err != nil {
					t.Fatal(err)
				}
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
				if got, want := b.d.Address(), q2931.Address(prefix, "b"); got != want {
					t.Errorf("b's address %v, want %v", got, want)
				}
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "echo")
				sm := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
				va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
				m, ok := sm()
				if !ok {
					t.Fatal("no SETUP captured")
				}
				called, ok1 := m.Called.AESA()
				caller, ok2 := m.Calling.AESA()
				if !ok1 || !ok2 || called != q2931.Address(prefix, "b") || caller != q2931.Address(prefix, "a") {
					t.Errorf("SETUP called %v, calling %v; want %v, %v", m.Called, m.Calling, q2931.Address(prefix, "b"), q2931.Address(prefix, "a"))
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
	bp := q2931.Prefix{q2931.AFIDCC, 0x84, 0x0F, 0x80, 0xFF, 0xE1}
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
						c.PeerPrefixes = map[string]q2931.Prefix{"b": bp}
					}
				})
				b := w.addNode("b", func(c *mcm.Config) { c.AddressPrefix = bp })
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "echo")
				sm := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
				rc := capture(w, sim.From("b", sim.MsgType(uni.MsgReleaseComplete)))
				v := w.call(ca, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
				if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != tc.want {
					t.Errorf("MakeCall: %v, want %v", r, tc.want)
				}
				m, ok := sm()
				if !ok {
					t.Fatal("no SETUP")
				}
				wantCalled := q2931.Address(q2931.DefaultPrefix, "b")
				if tc.known {
					wantCalled = q2931.Address(bp, "b")
				}
				if called, _ := m.Called.AESA(); called != wantCalled {
					t.Errorf("SETUP to %v, want %v", called, wantCalled)
				}
				if caller, _ := m.Calling.AESA(); caller != q2931.Address(q2931.DefaultPrefix, "a") {
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
		q2931.AFIICD:  {"arp.src.atm_international_code_designator", 2},
		q2931.AFIDCC:  {"arp.src.atm_data_country_code", 2},
		q2931.AFIE164: {"arp.src.atm_e.164_isdn", 8},
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
