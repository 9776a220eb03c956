package q2931

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/condis-project/condis/uni"
)

// Lengths of the parts of an ATM End System Address (UNI 3.1 §5.1.3):
// a 13-octet network prefix, a 6-octet end system identifier, a 1-octet
// selector.
const (
	PrefixLen = 13
	ESILen    = 6
)

// Authority and format identifiers of UNI 3.1's private ATM address
// formats, octet 0 of an AESA.
const (
	AFIDCC  byte = 0x39 // data country code (ISO 3166), 2-octet IDI
	AFIICD  byte = 0x47 // international code designator (ISO 6523), 2-octet IDI
	AFIE164 byte = 0x45 // E.164 number, 8-octet IDI
)

// Prefix is the network prefix of an ATM End System Address: the AFI,
// the IDI and the high-order DSP (UNI 3.1 §5.1.3, Annex A). The nodes of
// a cluster share one; Check says whether a prefix has one of UNI 3.1's
// formats.
type Prefix [PrefixLen]byte

// DefaultPrefix is the prefix of a node that configures none:
// 47.9999.c0d1.0000.0000.0000.0000, the ICD format with ICD 9999 and an
// HO-DSP of c0d1 followed by zeros. ISO/IEC 6523 reserves ICDs 9900 to
// 9999 for use by prior agreement between partners, which is what the
// nodes of a cluster are; no ICD is registered to condis, and these
// addresses never leave the cluster. The zeros leave room to give clusters
// (or parts of one) prefixes of their own.
var DefaultPrefix = Prefix{AFIICD, 0x99, 0x99, 0xC0, 0xD1}

// ParsePrefix parses a prefix written as 26 hex digits, AFI first (dots
// between them are ignored: "47.9999.c0d1.0000.0000.0000.0000"), and
// checks it (Check).
func ParsePrefix(s string) (Prefix, error) {
	var p Prefix
	digits := strings.ReplaceAll(s, ".", "")
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return p, fmt.Errorf("q2931: %q: %q is not a hex digit (want 26 hex digits, AFI first)", s, c)
		}
	}
	if len(digits) != 2*PrefixLen {
		return p, fmt.Errorf("q2931: %q has %d hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)", s, len(digits))
	}
	hex.Decode(p[:], []byte(digits))
	return p, p.Check()
}

// Check returns an error, in one line, unless p is a prefix of one of
// UNI 3.1's private ATM address formats: AFI 0x47 (ICD: 4 BCD digits), 0x39 (DCC: 3 BCD digits
// and a final 0xF) or 0x45 (E.164: 15 BCD digits, padded with leading
// zeros, and a final 0xF), the rest of the 13 octets being the HO-DSP.
func (p Prefix) Check() error {
	switch p[0] {
	case AFIICD:
		if !bcd(p[1:3], 4) {
			return fmt.Errorf("q2931: ICD %x is not 4 decimal digits", p[1:3])
		}
	case AFIDCC:
		if !bcd(p[1:3], 3) {
			return fmt.Errorf("q2931: DCC %x is not 3 decimal digits and a final f (e.g. 840f)", p[1:3])
		}
	case AFIE164:
		if !bcd(p[1:9], 15) {
			return fmt.Errorf("q2931: E.164 IDI %x is not 15 decimal digits (leading zeros pad the number) and a final f", p[1:9])
		}
	default:
		return fmt.Errorf("q2931: AFI %02x is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)", p[0])
	}
	return nil
}

// bcd reports whether b holds n decimal digits, one per semi-octet, and
// then (if n is odd) a final 0xF.
func bcd(b []byte, n int) bool {
	for i := range 2 * len(b) {
		d := b[i/2] >> 4
		if i%2 == 1 {
			d = b[i/2] & 0x0F
		}
		if i < n && d > 9 || i >= n && d != 0x0F {
			return false
		}
	}
	return true
}

// String is the prefix as 26 hex digits, as ParsePrefix reads it.
func (p Prefix) String() string { return hex.EncodeToString(p[:]) }

// ESI returns the end system identifier of the node called name: the
// first six octets of SHA-256(name), made a locally administered unicast
// IEEE 802 address (bit 0x02 of octet 0 set, bit 0x01 cleared), since an
// ESI is customarily a MAC address and this one is not a manufacturer's.
// Two names share an ESI only if 46 bits of SHA-256 collide; node
// configurations refuse peers whose ESIs collide.
func ESI(name string) [ESILen]byte {
	h := sha256.Sum256([]byte(name))
	var e [ESILen]byte
	copy(e[:], h[:ESILen])
	e[0] = e[0]&^0x01 | 0x02
	return e
}

// Address returns the ATM End System Address of the node called name
// under prefix: the 13 octets of prefix, the 6 of ESI(name), and selector
// 0. Every node computes every other node's address this way, so a call
// can be addressed by node name.
func Address(prefix Prefix, name string) uni.AESA {
	var a uni.AESA
	copy(a[:PrefixLen], prefix[:])
	e := ESI(name)
	copy(a[PrefixLen:PrefixLen+ESILen], e[:])
	return a
}
