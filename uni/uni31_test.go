package uni

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The tests in this file check what the encoder writes for each
// information element against the octet layouts and rules of UNI 3.1
// (ATM Forum af-uni-0010.002, §5.4.5; field-notes §5). The expected octets
// are written out by hand from those rules: nothing here decodes what was
// encoded, so a fault shared by encoder and decoder cannot hide.

// ieCase is one information element and what UNI 3.1 says it encodes to:
// the whole IE (identifier, instruction, length, contents) in hex, or, for
// a value UNI 3.1 does not allow, a refusal whose reason contains refuse.
type ieCase struct {
	name   string
	id     IEID
	inst   IEInstruction
	ie     contentAppender
	want   string // hex octets; spaces are ignored
	refuse string // substring of the EncodeError; "" when the IE must encode
}

func runIECases(t *testing.T, cases []ieCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendIE(nil, tc.id, tc.inst, tc.ie)
			if tc.refuse != "" {
				var ee *EncodeError
				if !errors.As(err, &ee) || ee.IE != tc.id || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("encoded %x, %v: want an EncodeError for IE %v saying %q", got, err, tc.id, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want, err := hex.DecodeString(strings.ReplaceAll(tc.want, " ", ""))
			if err != nil {
				t.Fatalf("bad expectation %q: %v", tc.want, err)
			}
			if hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Fatalf("encoded %x\nUNI 3.1  %x", got, want)
			}
		})
	}
}

// Instructions (octet 2 without its extension bit) and the test AESAs.
const (
	itu  = IEInstruction(0)                             // octet 2 = 0x80 on the wire
	atmf = IEInstruction(CodingNetwork << 5)            // octet 2 = 0xe0: ATM Forum specific
	iso  = IEInstruction(CodingISO << 5)                // octet 2 = 0xa0
	natl = IEInstruction(CodingNational << 5)           // octet 2 = 0xc0
	aesa = "47000580ffe1000000f21a2b3c 020012345678 00" // aesaCallee
	caes = "47000580ffe1000000f21a2b3c 0200abcdef01 01" // aesaCaller
)

// TestUNI31Cause: §5.4.5.15. Octet 5 is ext 1, spare, 4-bit location;
// octet 6 ext 1 and the 7-bit cause value; diagnostics follow. The coding
// standard (octet 2 bits 7-6) is the one that defines the value: ITU-T for
// Q.850/Q.2610/Q.2971's causes, ATM Forum specific (11) for the values only
// UNI 3.x defines: 10, 23, 51, 78, 92, 104.
func TestUNI31Cause(t *testing.T) {
	atmForum := map[Cause]bool{10: true, 23: true, 51: true, 78: true, 92: true, 104: true}
	var cases []ieCase
	for v := range causeNames {
		c := NewCause(v)
		octet2 := "80"
		if atmForum[v] {
			octet2 = "e0"
		}
		cases = append(cases, ieCase{name: "NewCause " + v.String(), id: IECause, inst: c.Instruction, ie: &c,
			want: "08" + octet2 + "0002 80" + hex.EncodeToString([]byte{0x80 | byte(v)})})
	}
	diag := NewCause(CauseTimerExpiry, '3', '0', '8')
	remote := CauseIE{Location: LocPrivateRemote, Value: CauseUserBusy}
	beyond := CauseIE{Location: LocBeyondInterworking, Value: CauseNormalCallClearing}
	ituLength := CauseIE{Location: LocUser, Value: CauseIncorrectLength}
	atmfClearing := CauseIE{Instruction: atmf, Location: LocUser, Value: CauseNormalCallClearing}
	wideValue := CauseIE{Location: LocUser, Value: 128}
	wideLoc := CauseIE{Location: 16, Value: CauseNormalCallClearing}
	longDiag := NewCause(CauseIEUnknown, make([]byte, 33)...)
	cases = append(cases,
		ieCase{"timer diagnostic", IECause, diag.Instruction, &diag, "08 80 0005 80 e6 333038", ""},
		ieCase{"private network serving the remote user", IECause, itu, &remote, "08 80 0002 85 91", ""},
		ieCase{"network beyond interworking point", IECause, itu, &beyond, "08 80 0002 8a 90", ""},
		ieCase{"104 with ITU-T coding", IECause, ituLength.Instruction, &ituLength, "", "coding standard 3"},
		ieCase{"16 with ATM Forum coding", IECause, atmf, &atmfClearing, "", "coding standard 0"},
		ieCase{"cause value over 7 bits", IECause, itu, &wideValue, "", "7 bits"},
		ieCase{"location over 4 bits", IECause, itu, &wideLoc, "", "4 bits"},
		ieCase{"33 diagnostic octets", IECause, itu, &longDiag, "", "32 octets"},
	)
	runIECases(t, cases)
}

// TestUNI31AAL: §5.4.5.5. Octet 5 is the AAL type; for AAL5 the subfields
// are identifier + value: 0x8c forward and 0x81 backward maximum CPCS-SDU
// size (2 octets each, both or neither), 0x84 SSCS type (1 octet).
func TestUNI31AAL(t *testing.T) {
	both := AALParameters{Type: AAL5, FwdMaxSDU: Some(9188), BwdMaxSDU: Some(9188), SSCS: Some(SSCSNull)}
	neither := AALParameters{Type: AAL5, SSCS: Some(SSCSAssured)}
	oneWay := AALParameters{Type: AAL5, FwdMaxSDU: Some(1500), BwdMaxSDU: Some(0), SSCS: Some(SSCSNull)}
	largest := AALParameters{Type: AAL5, FwdMaxSDU: Some(65535), BwdMaxSDU: Some(1)}
	fwdOnly := AALParameters{Type: AAL5, FwdMaxSDU: Some(9188), SSCS: Some(SSCSNull)}
	bwdOnly := AALParameters{Type: AAL5, BwdMaxSDU: Some(9188)}
	tooBig := AALParameters{Type: AAL5, FwdMaxSDU: Some(65536), BwdMaxSDU: Some(1)}
	aal1 := AALParameters{Type: AAL1, Other: []byte{0x85, 0x01, 0x86, 0x01}}
	aal1Sizes := AALParameters{Type: AAL1, FwdMaxSDU: Some(1), BwdMaxSDU: Some(1)}
	runIECases(t, []ieCase{
		{"both sizes and SSCS null", IEAAL, itu, &both, "58 80 0009 05 8c23e4 8123e4 8400", ""},
		{"no sizes, SSCOP assured", IEAAL, itu, &neither, "58 80 0003 05 8401", ""},
		{"unidirectional: backward size 0", IEAAL, itu, &oneWay, "58 80 0009 05 8c05dc 810000 8400", ""},
		{"largest size", IEAAL, itu, &largest, "58 80 0007 05 8cffff 810001", ""},
		{"forward size alone", IEAAL, itu, &fwdOnly, "", "together or neither"},
		{"backward size alone", IEAAL, itu, &bwdOnly, "", "together or neither"},
		{"size over 16 bits", IEAAL, itu, &tooBig, "", "out of range"},
		{"AAL1 contents verbatim", IEAAL, itu, &aal1, "58 80 0005 01 85018601", ""},
		{"AAL5 subfields on AAL1", IEAAL, itu, &aal1Sizes, "", "another AAL type"},
	})
}

// TestUNI31QoS: §5.4.5.18. Octets 5 and 6 are the forward and backward QoS
// class. ITU-T coding carries only class 0 (unspecified) both ways; the
// ATM Forum-specific coding carries classes 1-4 both ways.
func TestUNI31QoS(t *testing.T) {
	q := func(inst IEInstruction, fwd, bwd uint8) *QoSParameter {
		return &QoSParameter{Instruction: inst, Forward: fwd, Backward: bwd}
	}
	var cases []ieCase
	for fwd := uint8(1); fwd <= 4; fwd++ {
		for bwd := uint8(1); bwd <= 4; bwd++ {
			cases = append(cases, ieCase{name: "ATM Forum " + itoa(int(fwd)) + "/" + itoa(int(bwd)), id: IEQoS, inst: atmf,
				ie: q(atmf, fwd, bwd), want: "5c e0 0002 " + hex.EncodeToString([]byte{fwd, bwd})})
		}
	}
	cases = append(cases,
		ieCase{"ITU-T unspecified both ways", IEQoS, itu, q(itu, 0, 0), "5c 80 0002 0000", ""},
		ieCase{"ATM Forum class 3 forward, 0 backward", IEQoS, atmf, q(atmf, 3, 0), "", "1-4 in both directions"},
		ieCase{"ATM Forum class 0 forward, 1 backward", IEQoS, atmf, q(atmf, 0, 1), "", "1-4 in both directions"},
		ieCase{"ATM Forum 0/0", IEQoS, atmf, q(atmf, 0, 0), "", "1-4 in both directions"},
		ieCase{"ATM Forum class 5", IEQoS, atmf, q(atmf, 5, 1), "", "1-4 in both directions"},
		ieCase{"ITU-T class 1 forward", IEQoS, itu, q(itu, 1, 0), "", "only the unspecified QoS class"},
		ieCase{"ITU-T class 3 backward", IEQoS, itu, q(itu, 0, 3), "", "only the unspecified QoS class"},
		ieCase{"ISO coding", IEQoS, iso, q(iso, 0, 0), "", "ITU-T or ATM Forum"},
		ieCase{"national coding", IEQoS, natl, q(natl, 1, 1), "", "ITU-T or ATM Forum"},
	)
	runIECases(t, cases)
}

// TestUNI31TrafficDescriptor: §5.4.5.6. Each subfield is an identifier and
// a 24-bit value (0x82/0x83 PCR CLP=0, 0x84/0x85 PCR CLP=0+1, 0x88/0x89 SCR
// CLP=0, 0x90/0x91 SCR CLP=0+1, 0xa0/0xa1 MBS CLP=0, 0xb0/0xb1 MBS
// CLP=0+1, forward then backward), then 0xbe best effort and 0xbf + the
// tagging octet. Besides the octets, each case states which of UNI 3.1's
// allowed combinations each direction is (none: cause 73).
func TestUNI31TrafficDescriptor(t *testing.T) {
	r := Some
	for _, tc := range []struct {
		name     string
		td       TrafficDescriptor
		want     string
		fwd, bwd TrafficCombination
	}{
		{"best effort", TrafficDescriptor{FwdPCR01: r(100000), BwdPCR01: r(100000), BestEffort: true},
			"59 80 0009 84 0186a0 85 0186a0 be", CombinationBestEffort, CombinationBestEffort},
		{"best effort, nothing backward", TrafficDescriptor{FwdPCR01: r(1), BwdPCR01: r(0), BestEffort: true},
			"59 80 0009 84 000001 85 000000 be", CombinationBestEffort, CombinationBestEffort},
		{"PCR(0+1) each way", TrafficDescriptor{FwdPCR01: r(0xffffff), BwdPCR01: r(0)},
			"59 80 0008 84 ffffff 85 000000", CombinationPCR01, CombinationPCR01},
		{"PCR(0+1), SCR(0+1), MBS(0+1) each way",
			TrafficDescriptor{FwdPCR01: r(2000), BwdPCR01: r(3000), FwdSCR01: r(1000), BwdSCR01: r(1500), FwdMBS01: r(10), BwdMBS01: r(20)},
			"59 80 0018 84 0007d0 85 000bb8 90 0003e8 91 0005dc b0 00000a b1 000014", CombinationSCR01, CombinationSCR01},
		{"PCR(0), PCR(0+1)", TrafficDescriptor{FwdPCR0: r(10), FwdPCR01: r(20), BwdPCR0: r(30), BwdPCR01: r(40)},
			"59 80 0010 82 00000a 83 00001e 84 000014 85 000028", CombinationPCR0, CombinationPCR0},
		{"PCR(0), PCR(0+1), tagging forward", TrafficDescriptor{FwdPCR0: r(10), FwdPCR01: r(20), BwdPCR01: r(40), HasOptions: true, Options: TagForward},
			"59 80 000e 82 00000a 84 000014 85 000028 bf 01", CombinationPCR0Tagged, CombinationPCR01},
		{"PCR(0+1), SCR(0), MBS(0), tagging backward",
			TrafficDescriptor{FwdPCR01: r(20), BwdPCR01: r(40), BwdSCR0: r(30), BwdMBS0: r(5), HasOptions: true, Options: TagBackward},
			"59 80 0012 84 000014 85 000028 89 00001e a1 000005 bf 02", CombinationPCR01, CombinationSCR0Tagged},
		{"PCR(0+1), SCR(0), MBS(0)", TrafficDescriptor{FwdPCR01: r(20), FwdSCR0: r(10), FwdMBS0: r(3), BwdPCR01: r(0)},
			"59 80 0010 84 000014 85 000000 88 00000a a0 000003", CombinationSCR0, CombinationPCR01},
		// Outside UNI 3.1: what guaranteed service used to send.
		{"PCR and MBS without SCR", TrafficDescriptor{FwdPCR01: r(20), FwdMBS01: r(3), BwdPCR01: r(20), BwdMBS01: r(3)},
			"59 80 0010 84 000014 85 000014 b0 000003 b1 000003", CombinationNone, CombinationNone},
		{"no backward PCR(0+1)", TrafficDescriptor{FwdPCR01: r(20), BwdPCR0: r(20)},
			"59 80 0008 83 000014 84 000014", CombinationPCR01, CombinationNone},
		{"SCR(0+1) with MBS(0)", TrafficDescriptor{FwdPCR01: r(20), FwdSCR01: r(10), FwdMBS0: r(3), BwdPCR01: r(0)},
			"59 80 0010 84 000014 85 000000 90 00000a a0 000003", CombinationNone, CombinationPCR01},
		{"tagging without CLP=0 parameters", TrafficDescriptor{FwdPCR01: r(20), BwdPCR01: r(20), HasOptions: true, Options: TagForward},
			"59 80 000a 84 000014 85 000014 bf 01", CombinationNone, CombinationPCR01},
		{"best effort with SCR", TrafficDescriptor{FwdPCR01: r(20), BwdPCR01: r(20), FwdSCR01: r(10), FwdMBS01: r(1), BestEffort: true},
			"59 80 0011 84 000014 85 000014 90 00000a b0 000001 be", CombinationNone, CombinationNone},
		{"best effort without backward PCR", TrafficDescriptor{FwdPCR01: r(20), BestEffort: true},
			"59 80 0005 84 000014 be", CombinationNone, CombinationNone},
		{"best effort with tagging", TrafficDescriptor{FwdPCR01: r(20), BwdPCR01: r(20), BestEffort: true, HasOptions: true, Options: TagBackward},
			"59 80 000b 84 000014 85 000014 be bf 02", CombinationNone, CombinationNone},
		{"empty", TrafficDescriptor{}, "59 80 0000", CombinationNone, CombinationNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runIECases(t, []ieCase{{"octets", IETraffic, itu, &tc.td, tc.want, ""}})
			fwd, bwd, err := tc.td.Combinations()
			if fwd != tc.fwd || bwd != tc.bwd {
				t.Errorf("combinations %v / %v, UNI 3.1: %v / %v", fwd, bwd, tc.fwd, tc.bwd)
			}
			if allowed := tc.fwd != CombinationNone && tc.bwd != CombinationNone; allowed != (err == nil) {
				t.Errorf("Combinations error %v, allowed %v", err, allowed)
			}
		})
	}
	wide := TrafficDescriptor{FwdPCR01: Some(1 << 24), BwdPCR01: Some(0)}
	runIECases(t, []ieCase{{"cell rate over 24 bits", IETraffic, itu, &wide, "", "24 bits"}})
}

// TestUNI31BearerCapability: §5.4.5.7. Octet 5: ext, bearer class (5 bits);
// octet 5a (when octet 5's ext is 0): ext 1, traffic type (3 bits), timing
// requirements (2 bits); octet 6: ext 1, clipping (2 bits), user-plane
// connection configuration (2 bits).
func TestUNI31BearerCapability(t *testing.T) {
	b := func(c BearerCapability) *BearerCapability { return &c }
	runIECases(t, []ieCase{
		{"BCOB-X, no indication, point-to-point", IEBearer, itu, b(BearerCapability{Class: BCOBX, HasTrafficType: true}), "5e 80 0003 10 80 80", ""},
		{"BCOB-X, VBR", IEBearer, itu, b(BearerCapability{Class: BCOBX, HasTrafficType: true, TrafficType: TrafficVBR}), "5e 80 0003 10 88 80", ""},
		{"BCOB-X, CBR, end-to-end timing required, point-to-multipoint", IEBearer, itu,
			b(BearerCapability{Class: BCOBX, HasTrafficType: true, TrafficType: TrafficCBR, Timing: TimingRequired, UserPlane: PointToMultipoint}),
			"5e 80 0003 10 85 81", ""},
		{"BCOB-A, susceptible to clipping", IEBearer, itu, b(BearerCapability{Class: BCOBA, Clipping: true}), "5e 80 0002 81 a0", ""},
		{"BCOB-C", IEBearer, itu, b(BearerCapability{Class: BCOBC}), "5e 80 0002 83 80", ""},
		{"traffic type without octet 5a", IEBearer, itu, b(BearerCapability{Class: BCOBX, TrafficType: TrafficCBR}), "", "without octet 5a"},
		{"class over 5 bits", IEBearer, itu, b(BearerCapability{Class: 0x20}), "", "out of range"},
	})
}

// TestUNI31BHLI: §5.4.5.8. Octet 5: ext 1 and the high layer information
// type; then at most 8 octets of information.
func TestUNI31BHLI(t *testing.T) {
	runIECases(t, []ieCase{
		{"user specific: condis service name", IEBHLI, itu, &BHLI{Type: HLUserSpecific, Info: []byte("echo")}, "5d 80 0005 81 6563686f", ""},
		{"vendor specific, 8 octets", IEBHLI, itu, &BHLI{Type: HLVendorSpecific, Info: []byte{0, 0xa0, 0x3e, 0, 0, 0, 0, 1}}, "5d 80 0009 83 00a03e0000000001", ""},
		{"9 octets", IEBHLI, itu, &BHLI{Type: HLUserSpecific, Info: []byte("123456789")}, "", "8 octets"},
	})
}

// TestUNI31BLLI: §5.4.5.9. Octet 6 is layer 1 (bits 7-6 = 01, no
// extension: bit 8 is 1), octet 7 layer 2 (10) with 7a-7b, octet 8 layer 3
// (11) with 8a-8c; bit 8 ends a group. TR 9577 with IPI SNAP (octets 8a-8b = 0x40 0x80) is followed by
// 0x80, the OUI and the PID: RFC 1755's encoding of IP over LLC/SNAP.
func TestUNI31BLLI(t *testing.T) {
	snap := snapBLLI()
	user := UserL2(0x42)
	x25 := BLLI{L1: 0x05, L2: L2X25Link, L2Ext: Ext(0x20, 0x07), L3: L3X25, L3Ext: Ext(0x40, 0x07, 0x02)}
	runIECases(t, []ieCase{
		{"LLC", IEBLLI, itu, &BLLI{L2: L2LLC}, "5f 80 0001 cc", ""},
		{"LLC, TR 9577 IPI SNAP, IPv4", IEBLLI, itu, &snap, "5f 80 000a cc 6b 40 80 80 000000 0800", ""},
		{"user-specified layer 2", IEBLLI, itu, &user, "5f 80 0002 50 c2", ""},
		{"all three layers with extension octets", IEBLLI, itu, &x25, "5f 80 0008 a5 46 20 87 66 40 07 82", ""},
		{"no layer", IEBLLI, itu, &BLLI{}, "", "no layer"},
		{"SNAP octets without TR 9577", IEBLLI, itu, &BLLI{L2: L2LLC, HasSNAP: true}, "", "SNAP"},
	})
}

// TestUNI31PartyNumbers: §5.4.5.11 (called) and §5.4.5.13 (calling).
// Octet 5: ext, type of number (3 bits), numbering plan (4 bits); for the
// calling party octet 5a (ext 0 in octet 5) carries the presentation and
// screening indicators. An ATM End System Address is 20 octets.
func TestUNI31PartyNumbers(t *testing.T) {
	plain := CallingAESA(aesaCaller)
	screened := calling() // presentation allowed, user-provided verified and passed
	restricted := &CallingPartyNumber{Plan: PlanAESA, HasIndicators: true, Presentation: NumberNotAvailable}
	short := CalledAESA(aesaCallee)
	short.Address = short.Address[:19]
	runIECases(t, []ieCase{
		{"called AESA", IECalledParty, itu, CalledAESA(aesaCallee), "70 80 0015 82 " + aesa, ""},
		{"called E.164", IECalledParty, itu, &CalledPartyNumber{Type: NumberInternational, Plan: PlanE164, Address: []byte("41223456789")},
			"70 80 000c 91 3431323233343536373839", ""},
		{"calling AESA, no octet 5a", IECallingParty, itu, plain, "6c 80 0015 82 " + caes, ""},
		{"calling AESA, presentation allowed, user passed", IECallingParty, itu, screened, "6c 80 0016 02 81 " + caes, ""},
		{"calling number not available, no address", IECallingParty, itu, restricted, "6c 80 0002 02 c0", ""},
		{"called AESA of 19 octets", IECalledParty, itu, short, "", "20 octets"},
		{"called without address", IECalledParty, itu, &CalledPartyNumber{Plan: PlanAESA}, "", "no address"},
	})
}

// TestUNI31SmallIEs: the one- to five-octet IEs. Connection Identifier
// (§5.4.5.16): ext 1, VP-associated signalling (2 bits), preferred/exclusive
// (3 bits), VPCI, VCI. Endpoint Reference (§5.4.8.1): type, flag + 15-bit
// value. Endpoint State (§5.4.8.2), Call State (§5.4.5.10): the state in
// 6 bits. Restart Indicator (§5.4.5.20): ext 1, class. Broadband Repeat
// Indicator and Broadband Sending Complete (0xa1).
func TestUNI31SmallIEs(t *testing.T) {
	runIECases(t, []ieCase{
		{"connection identifier, explicit VPCI, exclusive VCI", IEConnectionID, itu,
			&ConnectionID{VPAssociated: VPExplicit, Exclusive: ExclusiveVCI, VPCI: 1, VCI: 0x0102}, "5a 80 0005 88 0001 0102", ""},
		{"endpoint reference 0, sent by the allocating side", IEEndpointRef, itu, &EndpointReference{Value: 0}, "54 80 0003 00 0000", ""},
		{"endpoint reference 0x1234 towards the allocator", IEEndpointRef, itu, &EndpointReference{Flag: true, Value: 0x1234}, "54 80 0003 00 9234", ""},
		{"endpoint reference over 15 bits", IEEndpointRef, itu, &EndpointReference{Value: 0x8000}, "", "15 bits"},
		{"endpoint state active", IEEndpointState, itu, &EndpointStateIE{State: PartyActive}, "55 80 0001 0a", ""},
		{"call state U10", IECallState, itu, &CallStateIE{State: StateActive}, "14 80 0001 0a", ""},
		{"call state Rest1", IECallState, itu, &CallStateIE{State: 61}, "14 80 0001 3d", ""},
		{"restart all VCs", IERestartIndicator, itu, &RestartIndicator{Class: RestartAllVCs}, "79 80 0001 82", ""},
		{"restart indicated VC", IERestartIndicator, itu, &RestartIndicator{Class: RestartIndicatedVC}, "79 80 0001 80", ""},
		{"repeat indicator, prioritised list", IERepeat, itu, &RepeatIndicator{Indication: RepeatPrioritized}, "63 80 0001 82", ""},
		{"sending complete", IESendingComplete, itu, &SendingComplete{}, "62 80 0001 a1", ""},
		{"report type: modification confirmation (Q.2963.1)", IEReportType, itu, &ReportType{Type: ReportModificationConfirmation}, "89 80 0001 81", ""},
		{"explicit instruction: discard IE, report status", IERestartIndicator, NewIEInstruction(CodingITU, true, IEActionDiscardIEReportStatus),
			&RestartIndicator{Class: RestartAllVCs}, "79 92 0001 82", ""},
	})
}

// TestUNI31DecodeCodings: what the decoder makes of the codings the encoder
// refuses to produce. A cause is accepted in either coding and reported with
// the one that defines it; ISO or national coding, a QoS class the coding
// does not carry, and a lone maximum CPCS-SDU size are invalid contents.
func TestUNI31DecodeCodings(t *testing.T) {
	release := func(cause []byte) []byte { return rawMessage(hdr(MsgRelease), cause) }
	for _, tc := range []struct {
		name   string
		msg    []byte
		value  Cause
		coding uint8
	}{
		{"104 ATM Forum coded", release(ieBytes(IECause, 0x60, 0x80, 0x80|104)), CauseIncorrectLength, CodingNetwork},
		{"104 ITU-T coded", release(ieBytes(IECause, 0, 0x80, 0x80|104)), CauseIncorrectLength, CodingNetwork},
		{"16 ATM Forum coded", release(ieBytes(IECause, 0x60, 0x80, 0x90)), CauseNormalCallClearing, CodingITU},
		{"78 ITU-T coded", release(ieBytes(IECause, 0, 0x80, 0x80|78)), CauseAALUnsupported, CodingNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.msg)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if len(m.Causes) != 1 || m.Causes[0].Value != tc.value || m.Causes[0].Instruction.CodingStandard() != tc.coding {
				t.Fatalf("causes %+v, want %v with coding standard %d", m.Causes, tc.value, tc.coding)
			}
			if _, err := m.Encode(); err != nil {
				t.Fatalf("decoded cause does not encode: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		msg    []byte
		ie     IEID
		action Action
	}{
		{"cause, national coding", release(ieBytes(IECause, 0x40, 0x80, 0x90)), IECause, ActionReject},
		{"cause, ISO coding", release(ieBytes(IECause, 0x20, 0x80, 0x90)), IECause, ActionReject},
		{"QoS ATM Forum 3/0", setupWithQoS(ieBytes(IEQoS, 0x60, 3, 0)), IEQoS, ActionReject},
		{"QoS ITU-T 1/1", setupWithQoS(ieBytes(IEQoS, 0, 1, 1)), IEQoS, ActionReject},
		{"QoS ATM Forum 0/0", setupWithQoS(ieBytes(IEQoS, 0x60, 0, 0)), IEQoS, ActionReject},
		{"AAL5 forward size alone", setupWith(ieBytes(IEAAL, 0, 0x05, 0x8c, 0x23, 0xe4)), IEAAL, ActionDiscardIEReportStatus},
		{"AAL5 backward size alone", setupWith(ieBytes(IEAAL, 0, 0x05, 0x81, 0x23, 0xe4)), IEAAL, ActionDiscardIEReportStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.msg)
			if tc.action == ActionDiscardIEReportStatus {
				// An optional IE: the message stands, the IE is kept raw.
				if err != nil || m.AAL != nil || len(m.Unrecognized) != 1 || m.Unrecognized[0].ID != tc.ie ||
					m.Unrecognized[0].Cause != CauseInvalidIEContents || m.Unrecognized[0].Action() != tc.action {
					t.Fatalf("Decode = %+v, %v: want the message with %v kept raw, cause 100", m, err, tc.ie)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Cause != CauseInvalidIEContents || de.IE != tc.ie || de.Action != tc.action {
				t.Fatalf("Decode = %v: want cause 100 for %v, %v", err, tc.ie, tc.action)
			}
		})
	}
}

// setupWithQoS is the hand-assembled SETUP of errors_test.go with another
// QoS Parameter IE.
func setupWithQoS(qos []byte) []byte {
	return rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieCalledOK, qos)
}
