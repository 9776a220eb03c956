package q2931_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

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
			p := q2931.DefaultPrefix
			if tc.prefix != "" {
				p = mustPrefix(t, strings.ReplaceAll(tc.prefix, " ", ""))
			}
			a := q2931.Address(p, tc.node)
			want := unhex(t, tc.want)
			if len(want) != uni.AESALen {
				t.Fatalf("want has %d octets", len(want))
			}
			for i := range a {
				if a[i] != want[i] {
					t.Errorf("octet %d = %02x, want %02x (address %v)", i, a[i], want[i], a)
				}
			}
			if e := q2931.ESI(tc.node); !bytes.Equal(e[:], want[13:19]) {
				t.Errorf("ESI(%q) = %x, want %x", tc.node, e, want[13:19])
			}
		})
	}
	if got := q2931.DefaultPrefix.String(); got != "479999c0d10000000000000000" {
		t.Errorf("DefaultPrefix = %s", got)
	}
	if err := q2931.DefaultPrefix.Check(); err != nil {
		t.Errorf("DefaultPrefix: %v", err)
	}
}

func TestESICollisions(t *testing.T) {
	for _, pair := range [][2]string{{"n753089", "n12280958"}, {"n795505", "n2441896"}} {
		if a, b := q2931.ESI(pair[0]), q2931.ESI(pair[1]); a != b {
			t.Errorf("ESI(%s) = %x, ESI(%s) = %x: want equal", pair[0], a, pair[1], b)
		}
	}
	if a, b := q2931.ESI("alpha"), q2931.ESI("beta"); a == b {
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
		p, err := q2931.ParsePrefix(s)
		if err != nil {
			t.Errorf("ParsePrefix(%q): %v", s, err)
			continue
		}
		if got, want := p.String(), strings.ToLower(strings.ReplaceAll(s, ".", "")); got != want {
			t.Errorf("ParsePrefix(%q) = %s", s, got)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"4999990000000000000000000000", `q2931: "4999990000000000000000000000" has 28 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"479999c0d1", `q2931: "479999c0d1" has 10 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"", `q2931: "" has 0 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"47 9999c0d10000000000000000", `q2931: "47 9999c0d10000000000000000": ' ' is not a hex digit (want 26 hex digits, AFI first)`},
		{"479999c0d1000000000000000g", `q2931: "479999c0d1000000000000000g": 'g' is not a hex digit (want 26 hex digits, AFI first)`},
		{"499999c0d10000000000000000", "q2931: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"c59999c0d10000000000000000", "q2931: AFI c5 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"00000000000000000000000000", "q2931: AFI 00 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)"},
		{"479a99c0d10000000000000000", "q2931: ICD 9a99 is not 4 decimal digits"},
		{"39840080ffe100000000000000", "q2931: DCC 8400 is not 3 decimal digits and a final f (e.g. 840f)"},
		{"398f0f80ffe100000000000000", "q2931: DCC 8f0f is not 3 decimal digits and a final f (e.g. 840f)"},
		{"450000000000000001ffffffff", "q2931: E.164 IDI 0000000000000001 is not 15 decimal digits (leading zeros pad the number) and a final f"},
		{"45f00000000000001fffffffff", "q2931: E.164 IDI f00000000000001f is not 15 decimal digits (leading zeros pad the number) and a final f"},
	} {
		_, err := q2931.ParsePrefix(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParsePrefix(%q):\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func mustPrefix(t testing.TB, s string) q2931.Prefix {
	t.Helper()
	p, err := q2931.ParsePrefix(s)
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
