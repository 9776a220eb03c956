package uni

import (
	"bytes"
	"errors"
	"testing"
)

// Valid IEs used to assemble messages by hand.
var (
	ieCalledOK  = ieBytes(IECalledParty, 0, append([]byte{0x82}, aesaCallee[:]...)...)
	ieTrafficOK = ieBytes(IETraffic, 0, 0x84, 0x00, 0x10, 0x00, 0x85, 0x00, 0x10, 0x00, 0xbe)
	ieBearerOK  = ieBytes(IEBearer, 0, 0x90, 0x80)
	ieQoSOK     = ieBytes(IEQoS, 0, 0x00, 0x00)
	ieCause16   = ieBytes(IECause, 0, 0x80, 0x90)
)

func setupWith(extra ...[]byte) []byte {
	ies := append([][]byte{ieTrafficOK, ieBearerOK, ieCalledOK, ieQoSOK}, extra...)
	return rawMessage(hdr(MsgSetup), ies...)
}

func TestDecodeHandAssembledSetupIsValid(t *testing.T) {
	// The error cases below each break one thing in this message.
	if _, err := Decode(setupWith()); err != nil {
		t.Fatalf("baseline SETUP rejected: %v", err)
	}
}

// TestDecodeErrors: each fault yields the Q.2931 cause and action the
// procedures prescribe (§5.6), with the diagnostic IE where there is one.
func TestDecodeErrors(t *testing.T) {
	withPD := func(pd byte) []byte { b := setupWith(); b[0] = pd; return b }
	withCRLen := func(l byte) []byte { b := setupWith(); b[1] = l; return b }
	withLen := func(delta int) []byte {
		b := setupWith()
		n := len(b) - HeaderLen + delta
		b[7], b[8] = byte(n>>8), byte(n)
		return b
	}
	unknownType := func(inst byte) []byte {
		b := rawMessage(hdr(0x01), ieCause16) // ALERTING: UNI 4.0, not implemented
		b[6] = inst
		return b
	}
	// Two stray octets after the last IE: not a whole IE header.
	truncatedIEHeader := rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieCalledOK, ieQoSOK, []byte{0x08, 0x80})
	calledShort := ieBytes(IECalledParty, 0, append([]byte{0x82}, aesaCallee[:19]...)...)

	for _, tc := range []struct {
		name     string
		msg      []byte
		cause    Cause
		action   Action
		ie       IEID
		headerOK bool
	}{
		// 96 mandatory IE missing: a SETUP is rejected (RELEASE COMPLETE),
		// anything else answered with STATUS.
		{"96 SETUP without called party", rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieQoSOK), CauseMandatoryIEMissing, ActionReject, IECalledParty, true},
		{"96 SETUP without QoS", rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieCalledOK), CauseMandatoryIEMissing, ActionReject, IEQoS, true},
		{"96 STATUS without call state", rawMessage(hdr(MsgStatus), ieCause16), CauseMandatoryIEMissing, ActionReportStatus, IECallState, true},
		{"96 RELEASE without cause", rawMessage(hdr(MsgRelease)), CauseMandatoryIEMissing, ActionReject, IECause, true},
		{"96 MODIFY REQUEST without traffic", rawMessage(hdr(MsgModifyRequest)), CauseMandatoryIEMissing, ActionReject, IETraffic, true},

		// 97 message type non-existent or not implemented, per the
		// message compatibility instruction.
		{"97 regular", unknownType(0x80), CauseMessageTypeUnknown, ActionReportStatus, 0, true},
		{"97 explicit clear call", unknownType(0x90), CauseMessageTypeUnknown, ActionClearCall, 0, true},
		{"97 explicit discard", unknownType(0x91), CauseMessageTypeUnknown, ActionIgnore, 0, true},
		{"97 explicit report", unknownType(0x92), CauseMessageTypeUnknown, ActionReportStatus, 0, true},

		// 99 IE non-existent: stops the message only when its explicit
		// instruction says so.
		{"99 explicit clear call", setupWith(ieBytes(0x7f, 0x10|IEActionClearCall, 1)), CauseIEUnknown, ActionClearCall, 0x7f, true},
		{"99 explicit discard message", setupWith(ieBytes(0x7f, 0x10|IEActionDiscardMessage, 1)), CauseIEUnknown, ActionIgnore, 0x7f, true},
		{"99 explicit discard and report", setupWith(ieBytes(0x7f, 0x10|IEActionDiscardMessageReport, 1)), CauseIEUnknown, ActionReportStatus, 0x7f, true},
		{"99 unexpected IE with explicit clear", setupWith(ieBytes(IERestartIndicator, 0x10, 0x82)), CauseIEUnknown, ActionClearCall, IERestartIndicator, true},

		// 100 invalid contents: a mandatory IE rejects the message; an
		// optional one only with an explicit instruction.
		{"100 mandatory called AESA 19 octets", rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, calledShort, ieQoSOK), CauseInvalidIEContents, ActionReject, IECalledParty, true},
		{"100 mandatory cause too short", rawMessage(hdr(MsgDropParty), ieBytes(IECause, 0, 0x80), ieBytes(IEEndpointRef, 0, 0, 0, 1)), CauseInvalidIEContents, ActionReportStatus, IECause, true},
		{"100 mandatory traffic unknown subfield", rawMessage(hdr(MsgModifyRequest), ieBytes(IETraffic, 0, 0x92, 0, 0, 1)), CauseInvalidIEContents, ActionReject, IETraffic, true},
		{"100 optional BHLI with explicit clear", setupWith(ieBytes(IEBHLI, 0x10|IEActionClearCall, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9)), CauseInvalidIEContents, ActionClearCall, IEBHLI, true},

		// 104 incorrect message length.
		{"104 shorter than header", []byte{0x09, 0x03, 0, 0, 1, 0x05, 0x80, 0}, CauseIncorrectLength, ActionIgnore, 0, false},
		{"104 length field too long", withLen(+1), CauseIncorrectLength, ActionReportStatus, 0, true},
		{"104 length field too short", withLen(-1), CauseIncorrectLength, ActionReportStatus, 0, true},
		{"104 truncated IE header", truncatedIEHeader, CauseIncorrectLength, ActionReportStatus, 0, true},
		{"104 IE runs past the end", rawMessage(hdr(MsgSetup), ieTrafficOK, []byte{byte(IEBearer), 0x80, 0x00, 0x05, 0x90, 0x80}), CauseIncorrectLength, ActionReportStatus, IEBearer, true},

		// 111 protocol error: not Q.2931 or a malformed call reference;
		// the message is ignored.
		{"111 protocol discriminator Q.931", withPD(0x08), CauseProtocolError, ActionIgnore, 0, false},
		{"111 call reference length 2", withCRLen(0x02), CauseProtocolError, ActionIgnore, 0, false},
		{"111 call reference length with high bits", withCRLen(0x13), CauseProtocolError, ActionIgnore, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.msg)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %+v, %v; want a *DecodeError", m, err)
			}
			if m != nil {
				t.Errorf("Decode returned a message with an error")
			}
			if de.Cause != tc.cause || de.Action != tc.action || de.IE != tc.ie || de.HeaderOK != tc.headerOK {
				t.Fatalf("got cause %v, action %v, IE %v, header ok %v; want %v, %v, %v, %v (%v)",
					de.Cause, de.Action, de.IE, de.HeaderOK, tc.cause, tc.action, tc.ie, tc.headerOK, de)
			}
			if de.HeaderOK && (de.CallRef != CallRef{Value: 1} || de.Type != MsgType(tc.msg[5])) {
				t.Errorf("header in error = %v %v, want cr=1 type 0x%02x", de.CallRef, de.Type, tc.msg[5])
			}
			if de.Error() == "" {
				t.Error("empty error text")
			}
		})
	}
}

// TestDecodeKeepsDiscardableIEs: unknown, unexpected and bad optional IEs
// under regular handling do not stop the message; they are kept with
// their cause and the action "discard IE, proceed, report status".
func TestDecodeKeepsDiscardableIEs(t *testing.T) {
	unknown := ieBytes(0x7f, 0, 0xaa)
	unexpected := ieBytes(IECallState, 0, 0x0a) // Call State has no place in SETUP
	badBHLI := ieBytes(IEBHLI, 0, 0x01)         // extension bit missing
	explicitDiscard := ieBytes(0x42, 0x10|IEActionDiscardIE)
	m, err := Decode(setupWith(unknown, unexpected, badBHLI, explicitDiscard))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     IEID
		cause  Cause
		action Action
	}{
		{0x7f, CauseIEUnknown, ActionDiscardIEReportStatus},
		{IECallState, CauseIEUnknown, ActionDiscardIEReportStatus},
		{IEBHLI, CauseInvalidIEContents, ActionDiscardIEReportStatus},
		{0x42, CauseIEUnknown, ActionDiscardIE},
	}
	if len(m.Unrecognized) != len(want) {
		t.Fatalf("kept %d IEs, want %d: %+v", len(m.Unrecognized), len(want), m.Unrecognized)
	}
	for i, w := range want {
		r := &m.Unrecognized[i]
		if r.ID != w.id || r.Cause != w.cause || r.Action() != w.action {
			t.Errorf("kept IE %d = %v cause %v action %v; want %v %v %v", i, r.ID, r.Cause, r.Action(), w.id, w.cause, w.action)
		}
	}
	if m.BHLI != nil || m.CallState != nil {
		t.Error("a discarded IE also appears as a modelled one")
	}
	if !bytes.Equal(m.Unrecognized[0].Contents, []byte{0xaa}) || m.Unrecognized[3].Contents != nil {
		t.Errorf("kept contents %x / %x, want aa / nil", m.Unrecognized[0].Contents, m.Unrecognized[3].Contents)
	}
}

// TestDecodeErrorDiagnostic: the diagnostic octets for the reply's Cause IE.
func TestDecodeErrorDiagnostic(t *testing.T) {
	_, err := Decode(rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieQoSOK))
	var de *DecodeError
	if !errors.As(err, &de) || !bytes.Equal(de.Diagnostic(), []byte{byte(IECalledParty)}) {
		t.Fatalf("diagnostic = %x (%v), want 70", de.Diagnostic(), err)
	}
	_, err = Decode(rawMessage(hdr(0x01)))
	if !errors.As(err, &de) || !bytes.Equal(de.Diagnostic(), []byte{0x01}) {
		t.Fatalf("diagnostic = %x (%v), want 01", de.Diagnostic(), err)
	}
}

// TestEncodeErrors: Append refuses what a peer would have to reject.
func TestEncodeErrors(t *testing.T) {
	base := func() *Message { return goldenSetupMessage() }
	for _, tc := range []struct {
		name string
		mod  func(m *Message)
		ie   IEID
	}{
		{"unknown type", func(m *Message) { m.Type = 0x01 }, 0},
		{"call reference over 23 bits", func(m *Message) { m.CallRef.Value = MaxCallRef + 1 }, 0},
		{"mandatory IE missing", func(m *Message) { m.Called = nil }, IECalledParty},
		{"IE not carried", func(m *Message) { m.Restart = &RestartIndicator{} }, IERestartIndicator},
		{"too many BLLI", func(m *Message) { m.BLLI = make([]BLLI, 4); m.BLLI[0].L2 = L2LLC }, IEBLLI},
		{"cell rate over 24 bits", func(m *Message) { m.Traffic.FwdPCR01 = Some(1 << 24) }, IETraffic},
		{"AAL5 SDU over 16 bits", func(m *Message) { m.AAL.FwdMaxSDU = Some(1 << 16) }, IEAAL},
		{"BHLI info over 8 octets", func(m *Message) { m.BHLI.Info = []byte("123456789") }, IEBHLI},
		{"AESA of 19 octets", func(m *Message) { m.Called.Address = m.Called.Address[:19] }, IECalledParty},
		{"empty BLLI", func(m *Message) { m.BLLI[0] = BLLI{} }, IEBLLI},
		{"SNAP without TR 9577", func(m *Message) { m.BLLI[0].HasSNAP = true }, IEBLLI},
		{"traffic type without octet 5a", func(m *Message) { m.Bearer.HasTrafficType = false; m.Bearer.TrafficType = TrafficCBR }, IEBearer},
		{"cause diagnostic too long", func(m *Message) {
			m.Type = MsgRelease
			*m = Message{Type: MsgRelease, Causes: []CauseIE{NewCause(CauseNormalCallClearing, make([]byte, 33)...)}}
		}, IECause},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mod(m)
			_, err := m.Encode()
			var ee *EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("Encode = %v, want *EncodeError", err)
			}
			if ee.IE != tc.ie || ee.Type != m.Type {
				t.Fatalf("error names IE %v type %v, want %v %v (%v)", ee.IE, ee.Type, tc.ie, m.Type, err)
			}
		})
	}
}
