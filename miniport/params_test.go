package miniport_test

import (
	"errors"
	"testing"

	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// TestParamsRoundTrip: what Media builds, ParseMedia reads back, octet
// for octet as documented.
func TestParamsRoundTrip(t *testing.T) {
	p := miniport.VCParams{Kind: miniport.Reliable, Peer: "node-7.example", ConnID: 0x00020031,
		Transmit: miniport.Traffic{TokenRate: 1, TokenBucketSize: 2, PeakBandwidth: 3, MaxSduSize: 4},
		Receive:  miniport.Traffic{TokenRate: 5, TokenBucketSize: 6, PeakBandwidth: 7, MaxSduSize: 8}}
	mp := p.Media()
	b := mp.MediaSpecific.Parameters
	if mp.MediaSpecific.ParamType != miniport.ParamMedia || len(b) != 39+len(p.Peer) || b[0] != 1 || b[1] != 3 ||
		b[2] != 0 || b[3] != 2 || b[4] != 0 || b[5] != 0x31 || b[9] != 1 || b[37] != 8 || int(b[38]) != len(p.Peer) {
		t.Fatalf("encoding % x", b)
	}
	got, err := miniport.ParseMedia(&ndis.CallParameters{MediaParameters: mp})
	if err != nil || !got.Equal(p) {
		t.Fatalf("ParseMedia = %+v, %v; want %+v", got, err, p)
	}
}

// TestParamsMalformed: every malformed blob is refused with an error
// matching ErrBadParams that says what is wrong.
func TestParamsMalformed(t *testing.T) {
	good := miniport.VCParams{Kind: miniport.Datagram, Peer: "b", ConnID: 32}.Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"empty":           {},
		"short":           good[:38],
		"version":         mod(func(b []byte) []byte { b[0] = 2; return b }),
		"kind":            mod(func(b []byte) []byte { b[1] = 0; return b }),
		"name too long":   mod(func(b []byte) []byte { b[38] = 2; return b }),
		"name too short":  mod(func(b []byte) []byte { return append(b, 'x', 'y') }),
		"bad name":        mod(func(b []byte) []byte { b[39] = '/'; return b }),
		"sig with connID": mod(func(b []byte) []byte { b[1] = byte(miniport.Signalling); return b }),
	} {
		if p, err := miniport.Unmarshal(b); !errors.Is(err, miniport.ErrBadParams) {
			t.Errorf("%s: Unmarshal = %+v, %v; want ErrBadParams", name, p, err)
		}
	}
	if _, err := miniport.ParseMedia(&ndis.CallParameters{}); !errors.Is(err, miniport.ErrBadParams) {
		t.Errorf("no MediaParameters: %v", err)
	}
}

// TestLinkEventRoundTrip: the status buffer of StatusLinkEvent.
func TestLinkEventRoundTrip(t *testing.T) {
	for _, e := range []miniport.LinkEvent{
		{Peer: "alpha", Up: true, Incarnation: 0x0102030405060708},
		{Peer: "b", Reason: transport.DownTimeout, Incarnation: 9},
	} {
		got, err := miniport.ParseLinkEvent(&ndis.StatusIndication{StatusCode: miniport.StatusLinkEvent, Buffer: e.Marshal()})
		if err != nil || got != e {
			t.Errorf("ParseLinkEvent = %+v, %v; want %+v", got, err, e)
		}
	}
	if _, err := miniport.ParseLinkEvent(&ndis.StatusIndication{StatusCode: ndis.StatusMediaDisconnect}); !errors.Is(err, miniport.ErrNotLinkEvent) {
		t.Errorf("other status: %v", err)
	}
	if _, err := miniport.ParseLinkEvent(&ndis.StatusIndication{StatusCode: miniport.StatusLinkEvent, Buffer: []byte{1, 2}}); err == nil {
		t.Errorf("malformed buffer accepted")
	}
}
