package q2931

import (
	"bytes"
	"fmt"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// MaxServiceLen is the longest service name: the information field of a
// BHLI is at most 8 octets.
const MaxServiceLen = uni.MaxBHLIInfo

// anyAddress in a SAP means "whatever this node's address is".
var anyAddress = func() (a uni.AESA) {
	for i := range a {
		a[i] = 0xFF
	}
	return a
}()

// ValidService says, in one line, why s is not a service name (1 to
// MaxServiceLen octets), or nil if it is one.
func ValidService(s string) error {
	if len(s) == 0 || len(s) > MaxServiceLen {
		return fmt.Errorf("q2931: service name %q: 1 to %d octets", s, MaxServiceLen)
	}
	return nil
}

// CheckServiceName says, in one line meant to follow the name, why s is not
// a service name people may give (at most MaxServiceLen octets of letters,
// digits, '-', '_' and '.'), or nil if it is one. The empty name passes:
// whether a name is required is the caller's to say.
func CheckServiceName(s string) error {
	if len(s) > MaxServiceLen {
		return fmt.Errorf("%d octets, more than the %d a Q.2931 BHLI carries", len(s), MaxServiceLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("character %q is not a letter, digit, '-', '_' or '.'", c)
		}
	}
	return nil
}

// ServiceSap builds the CO_SAP that registers service on this node. A Q.2931
// SAP is an address plus BHLI (as ATM_SAP is): SapType SapTypeNSAP and Sap
//
//	octets 0-19  the ATM End System Address to listen on; twenty 0xFF octets
//	             (what ServiceSap puts) mean "this node's address"
//	octet  20    BHLI high layer information type: 0x01, user specific
//	octets 21-   BHLI information: the service name, 1 to 8 octets
//
// ServiceSap does not check the name: registering a SAP whose name is empty
// or longer than 8 octets fails with NDIS_STATUS_INVALID_DATA (ParseSap).
func ServiceSap(service string) *ndis.CoSap {
	b := make([]byte, 0, uni.AESALen+1+len(service))
	b = append(b, anyAddress[:]...)
	b = append(b, uni.HLUserSpecific)
	b = append(b, service...)
	return &ndis.CoSap{SapType: SapTypeNSAP, Sap: b}
}

// ParseSap decodes a CO_SAP that a call manager whose node's address is own
// is asked to register (ProtocolCmRegisterSap): the service it listens for,
// or the status to refuse it with — NDIS_STATUS_INVALID_DATA for a SAP not
// in ServiceSap's format or with a bad service name,
// NDIS_STATUS_INVALID_ADDRESS for another address than own or the
// wildcard.
func ParseSap(s *ndis.CoSap, own uni.AESA) (string, ndis.Status) {
	if s == nil || s.SapType != SapTypeNSAP || len(s.Sap) < uni.AESALen+1 {
		return "", ndis.StatusInvalidData
	}
	var a uni.AESA
	copy(a[:], s.Sap[:uni.AESALen])
	if a != anyAddress && a != own {
		return "", ndis.StatusInvalidAddress
	}
	if s.Sap[uni.AESALen] != uni.HLUserSpecific {
		return "", ndis.StatusInvalidData
	}
	svc := string(s.Sap[uni.AESALen+1:])
	if ValidService(svc) != nil {
		return "", ndis.StatusInvalidData
	}
	return svc, ndis.StatusSuccess
}

// SapService returns the service name a CO_SAP in ServiceSap's format
// registers, whatever its address; ok is false for a SAP of another format.
func SapService(s *ndis.CoSap) (service string, ok bool) {
	if s == nil || s.SapType != SapTypeNSAP || len(s.Sap) < uni.AESALen+2 || s.Sap[uni.AESALen] != uni.HLUserSpecific {
		return "", false
	}
	return string(s.Sap[uni.AESALen+1:]), true
}

// Addressed reports whether a Called Party Number names own.
func Addressed(c *uni.CalledPartyNumber, own uni.AESA) bool {
	if c == nil {
		return false
	}
	a, ok := c.AESA()
	return ok && bytes.Equal(a[:], own[:])
}
