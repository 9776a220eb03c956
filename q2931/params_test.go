package q2931_test

import (
	"bytes"
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// TestCallParamsRoundTrip: what CallParams writes, Destination,
// DestinationService and ReliableRequested read back, octet for octet.
func TestCallParamsRoundTrip(t *testing.T) {
	tx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1000}
	p := q2931.CallParams("beta", "echo", tx, ndis.Flowspec{}, true)
	sp := p.CallMgrParameters.CallMgrSpecific
	if sp.ParamType != q2931.ParamCalledParty || string(sp.Parameters) != "beta/echo" {
		t.Fatalf("CallMgrSpecific %#x %q", sp.ParamType, sp.Parameters)
	}
	if p.CallMgrParameters.Transmit != tx {
		t.Errorf("transmit %+v", p.CallMgrParameters.Transmit)
	}
	node, svc, err := q2931.Destination(p)
	if err != nil || node != "beta" || svc != "echo" {
		t.Errorf("Destination = %q %q %v", node, svc, err)
	}
	if b, ok := q2931.DestinationService(p); !ok || string(b) != "echo" {
		t.Errorf("DestinationService = %q %v", b, ok)
	}
	if !q2931.ReliableRequested(p) {
		t.Error("reliable not requested")
	}
	if q2931.ReliableRequested(q2931.CallParams("beta", "echo", tx, tx, false)) {
		t.Error("best effort call asks for reliable delivery")
	}
	if conn, flags, ok := q2931.Media(p); !ok || conn != 0 || flags != q2931.MediaReliable {
		t.Errorf("Media = %#x %#x %v", conn, flags, ok)
	}
}

// TestDestinationRefuses: a destination that is not node/service, a bad
// node name or a service name BHLI cannot carry is refused, by both readers.
func TestDestinationRefuses(t *testing.T) {
	for _, dst := range []string{"echo", "beta/", "beta/ninechars", "-x/echo", ""} {
		p := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{
			CallMgrSpecific: ndis.SpecificParameters{ParamType: q2931.ParamCalledParty, Parameters: []byte(dst)}}}
		if n, s, err := q2931.Destination(p); err == nil {
			t.Errorf("Destination(%q) = %q %q", dst, n, s)
		}
		if dst != "-x/echo" { // DestinationService does not read the node
			if b, ok := q2931.DestinationService(p); ok {
				t.Errorf("DestinationService(%q) = %q", dst, b)
			}
		}
	}
	other := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{
		CallMgrSpecific: ndis.SpecificParameters{ParamType: 0xC0D15001, Parameters: []byte("echo")}}}
	if _, ok := q2931.DestinationService(other); ok {
		t.Error("DestinationService read another ParamType")
	}
}

// TestMediaBlob: the ParamMedia blob is the connection identifier big
// endian, then the flags; Media refuses another length or type.
func TestMediaBlob(t *testing.T) {
	b := q2931.MediaArray(0x00030021, q2931.MediaReliable)
	if !bytes.Equal(b[:], []byte{0, 3, 0, 0x21, 1}) {
		t.Fatalf("MediaArray = % x", b)
	}
	p := &ndis.CallParameters{MediaParameters: &ndis.MediaParameters{
		MediaSpecific: ndis.SpecificParameters{ParamType: q2931.ParamMedia, Parameters: b[:]}}}
	if conn, flags, ok := q2931.Media(p); !ok || conn != 0x00030021 || flags != 1 {
		t.Errorf("Media = %#x %#x %v", conn, flags, ok)
	}
	p.MediaParameters.MediaSpecific.Parameters = b[:4]
	if _, _, ok := q2931.Media(p); ok {
		t.Error("Media read a 4-octet blob")
	}
}

// TestParseSap: the statuses ProtocolCmRegisterSap refuses with.
func TestParseSap(t *testing.T) {
	own := q2931.Address(q2931.DefaultPrefix, "alpha")
	mine := q2931.ServiceSap("echo")
	copy(mine.Sap, own[:])
	other := q2931.Address(q2931.DefaultPrefix, "beta")
	theirs := q2931.ServiceSap("echo")
	copy(theirs.Sap, other[:])
	for _, tc := range []struct {
		name string
		sap  *ndis.CoSap
		svc  string
		st   ndis.Status
	}{
		{"wildcard", q2931.ServiceSap("echo"), "echo", ndis.StatusSuccess},
		{"own address", mine, "echo", ndis.StatusSuccess},
		{"another address", theirs, "", ndis.StatusInvalidAddress},
		{"empty name", q2931.ServiceSap(""), "", ndis.StatusInvalidData},
		{"name too long", q2931.ServiceSap("ninechars"), "", ndis.StatusInvalidData},
		{"another SapType", &ndis.CoSap{SapType: 0xC0D15003, Sap: []byte("echo")}, "", ndis.StatusInvalidData},
		{"not BHLI user specific", &ndis.CoSap{SapType: q2931.SapTypeNSAP, Sap: append(bytes.Repeat([]byte{0xFF}, uni.AESALen), 0x02, 'e')}, "", ndis.StatusInvalidData},
		{"nil", nil, "", ndis.StatusInvalidData},
	} {
		if svc, st := q2931.ParseSap(tc.sap, own); svc != tc.svc || st != tc.st {
			t.Errorf("%s: %q %v, want %q %v", tc.name, svc, st, tc.svc, tc.st)
		}
	}
}

// TestIndicationStatus: an indication without a cause is success; with
// one, the table's status.
func TestIndicationStatus(t *testing.T) {
	if st := q2931.IndicationStatus(uni.Indication{}); st != ndis.StatusSuccess {
		t.Errorf("no cause: %v", st)
	}
	if st := q2931.IndicationStatus(uni.Indication{Cause: uni.NewCause(uni.CauseDestinationOutOfOrder)}); st != ndis.StatusDestOutOfOrder {
		t.Errorf("cause 27: %v", st)
	}
}

// TestModifiedFlowspecs: a MODIFY REQUEST's forward direction is the
// caller's transmit direction; at the called end it is the receive one.
func TestModifiedFlowspecs(t *testing.T) {
	cl := ndis.Flowspec{ServiceType: ndis.ServiceControlledLoad, TokenRate: 4800, TokenBucketSize: 4800, PeakBandwidth: 9600, MaxSduSize: 100}
	td := &uni.TrafficDescriptor{FwdPCR01: uni.Some(400), FwdSCR01: uni.Some(300), FwdMBS01: uni.Some(200),
		BwdPCR01: uni.Some(40), BwdSCR01: uni.Some(30), BwdMBS01: uni.Some(20)}
	fwd := ndis.Flowspec{ServiceType: ndis.ServiceControlledLoad, TokenRate: 300 * 48, TokenBucketSize: 200 * 48, PeakBandwidth: 400 * 48, MaxSduSize: 100}
	bwd := ndis.Flowspec{ServiceType: ndis.ServiceControlledLoad, TokenRate: 30 * 48, TokenBucketSize: 20 * 48, PeakBandwidth: 40 * 48, MaxSduSize: 100}
	if tx, rx := q2931.ModifiedFlowspecs(td, cl, cl, false); tx != fwd || rx != bwd {
		t.Errorf("caller: tx %+v rx %+v", tx, rx)
	}
	if tx, rx := q2931.ModifiedFlowspecs(td, cl, cl, true); tx != bwd || rx != fwd {
		t.Errorf("called: tx %+v rx %+v", tx, rx)
	}
}

// TestCallParamsAllocations: a client makes call parameters for every
// call, so CallParams costs one allocation for usual names (the
// destination shares it) and two for a destination too long for that;
// either way the destination reads back whole and cannot be appended to
// in place.
func TestCallParamsAllocations(t *testing.T) {
	tx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1000}
	long := "a-node-name-that-is-quite-long-for-a-node-name-indeed"
	for _, c := range []struct {
		node string
		want float64
	}{{"beta", 1}, {long, 2}} {
		if a := testing.AllocsPerRun(100, func() { q2931.CallParams(c.node, "echo", tx, tx, false) }); a != c.want {
			t.Errorf("CallParams(%q): %.1f allocations, want %.0f", c.node, a, c.want)
		}
		sp := q2931.CallParams(c.node, "echo", tx, tx, false).CallMgrParameters.CallMgrSpecific
		if string(sp.Parameters) != c.node+"/echo" || cap(sp.Parameters) != len(sp.Parameters) {
			t.Errorf("destination %q (cap %d), want %q with no room after it", sp.Parameters, cap(sp.Parameters), c.node+"/echo")
		}
	}
}

// TestRecycleCallParams: parameters CallParams built are taken back and
// cleared (nothing of the old call stays reachable), and the next
// CallParams builds in them without an allocation; parameters made
// otherwise, or nil, are left alone.
func TestRecycleCallParams(t *testing.T) {
	tx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1000}
	p := q2931.CallParams("beta", "echo", tx, tx, true)
	if !q2931.RecycleCallParams(p) {
		t.Fatal("RecycleCallParams refused parameters CallParams built")
	}
	if p.CallMgrParameters != nil || p.MediaParameters != nil {
		t.Errorf("recycled parameters still point at %p and %p", p.CallMgrParameters, p.MediaParameters)
	}
	own := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{Transmit: tx}}
	if q2931.RecycleCallParams(own) || own.CallMgrParameters == nil || own.CallMgrParameters.Transmit != tx {
		t.Error("RecycleCallParams took, or changed, parameters CallParams did not build")
	}
	if q2931.RecycleCallParams(nil) {
		t.Error("RecycleCallParams(nil) reported true")
	}
	again := q2931.CallParams("gamma", "news", tx, tx, false)
	if n, s, err := q2931.Destination(again); err != nil || n != "gamma" || s != "news" || q2931.ReliableRequested(again) {
		t.Errorf("built after a recycle: %s/%s, %v, reliable %v", n, s, err, q2931.ReliableRequested(again))
	}
	if raceEnabled {
		return // the race detector's sync.Pool drops some of what it is given
	}
	if a := testing.AllocsPerRun(100, func() {
		q2931.RecycleCallParams(q2931.CallParams("beta", "echo", tx, tx, false))
	}); a != 0 {
		t.Errorf("CallParams after RecycleCallParams: %.1f allocations, want 0", a)
	}
}
