package uni

import "testing"

// Addresses used throughout the tests: a private-network AESA prefix with
// two ESIs.
var (
	aesaCallee = mustAESA("47000580ffe1000000f21a2b3c.020012345678.00")
	aesaCaller = mustAESA("47000580ffe1000000f21a2b3c.0200abcdef01.01")
)

func mustAESA(s string) AESA {
	a, err := ParseAESA(s)
	if err != nil {
		panic(err)
	}
	return a
}

func fullAAL5() *AALParameters {
	return &AALParameters{Type: AAL5, FwdMaxSDU: Some(9188), BwdMaxSDU: Some(9188), Mode: Some(AALModeMessage), SSCS: Some(SSCSNull)}
}

func fullTraffic() *TrafficDescriptor {
	return &TrafficDescriptor{
		FwdPCR0: Some(100000), BwdPCR0: Some(90000), FwdPCR01: Some(120000), BwdPCR01: Some(110000),
		FwdSCR0: Some(50000), BwdSCR0: Some(40000), FwdSCR01: Some(60000), BwdSCR01: Some(55000),
		FwdMBS0: Some(100), BwdMBS0: Some(90), FwdMBS01: Some(200), BwdMBS01: Some(180),
		BestEffort: true, HasOptions: true, Options: TagForward | TagBackward,
	}
}

func snapBLLI() BLLI {
	l := BLLI{L2: L2LLC, HasSNAP: true, OUI: [3]byte{0x00, 0x00, 0x00}, PID: 0x0800}
	l.SetIPI(IPISNAP)
	return l
}

func echoBHLI() *BHLI {
	h, err := ServiceBHLI("echo")
	if err != nil {
		panic(err)
	}
	return h
}

func calling() *CallingPartyNumber {
	c := CallingAESA(aesaCaller)
	c.HasIndicators, c.Presentation, c.Screening = true, PresentationAllowed, ScreenUserPassed
	return c
}

type fixture struct {
	name string
	m    *Message
}

// fixtures returns one message of every implemented type with every IE the
// type can carry populated (repeatable IEs at their maximum count).
func fixtures() []fixture {
	cr := CallRef{Value: 0x123456}
	crBack := CallRef{Value: 0x123456, Flag: true}
	connID := func() *ConnectionID {
		return &ConnectionID{VPAssociated: VPExplicit, Exclusive: ExclusiveVCI, VPCI: 1, VCI: 0x0102}
	}
	return []fixture{
		{"SETUP", &Message{
			Type: MsgSetup, CallRef: cr,
			AAL:     fullAAL5(),
			Traffic: fullTraffic(),
			Bearer: &BearerCapability{Class: BCOBX, HasTrafficType: true, TrafficType: TrafficVBR,
				Timing: TimingNotRequired, Clipping: true, UserPlane: PointToMultipoint},
			BHLI:   echoBHLI(),
			Repeat: &RepeatIndicator{Indication: RepeatPrioritized},
			BLLI: []BLLI{
				UserL2(0x42),
				snapBLLI(),
				{L1: 0x05, L2: L2X25Link, L2Ext: Ext(0x20, 0x07), L3: L3X25, L3Ext: Ext(0x40, 0x07, 0x02)},
			},
			Called:          CalledAESA(aesaCallee),
			Calling:         calling(),
			ConnectionID:    connID(),
			QoS:             &QoSParameter{Instruction: NewIEInstruction(CodingNetwork, false, 0), Forward: QoSClass1, Backward: QoSClass3},
			SendingComplete: &SendingComplete{},
			EndpointRef:     &EndpointReference{Value: 0},
		}},
		{"CALL PROCEEDING", &Message{Type: MsgCallProceeding, CallRef: crBack,
			ConnectionID: connID(), EndpointRef: &EndpointReference{Flag: true, Value: 0}}},
		{"CONNECT", &Message{Type: MsgConnect, CallRef: crBack,
			AAL: fullAAL5(), BLLI: []BLLI{UserL2(0x42)}, ConnectionID: connID(),
			EndpointRef: &EndpointReference{Flag: true, Value: 0}}},
		{"CONNECT ACKNOWLEDGE", &Message{Type: MsgConnectAck, CallRef: cr}},
		{"RELEASE", &Message{Type: MsgRelease, CallRef: cr, Causes: []CauseIE{
			NewCause(CauseNormalCallClearing),
			{Location: LocPrivateLocal, Value: CauseTimerExpiry, Diagnostic: []byte("313")},
		}}},
		{"RELEASE COMPLETE", &Message{Type: MsgReleaseComplete, CallRef: crBack, Causes: []CauseIE{
			NewCause(CauseIncompatibleDestination, byte(IEBHLI)),
			NewCause(CauseCallRejected),
		}}},
		{"STATUS ENQUIRY", &Message{Type: MsgStatusEnquiry, CallRef: cr, EndpointRef: &EndpointReference{Value: 7}}},
		{"STATUS", &Message{Type: MsgStatus, CallRef: crBack,
			Causes:        []CauseIE{NewCause(CauseResponseToStatusEnquiry)},
			CallState:     &CallStateIE{State: StateActive},
			EndpointRef:   &EndpointReference{Flag: true, Value: 7},
			EndpointState: &EndpointStateIE{State: PartyActive}}},
		{"RESTART", &Message{Type: MsgRestart, CallRef: CallRef{},
			ConnectionID: connID(), Restart: &RestartIndicator{Class: RestartIndicatedVC}}},
		{"RESTART ACKNOWLEDGE", &Message{Type: MsgRestartAck, CallRef: CallRef{Flag: true},
			ConnectionID: connID(), Restart: &RestartIndicator{Class: RestartIndicatedVC}}},
		{"ADD PARTY", &Message{Type: MsgAddParty, CallRef: cr,
			AAL: fullAAL5(), BHLI: echoBHLI(), BLLI: []BLLI{snapBLLI()},
			Called: CalledAESA(aesaCallee), Calling: calling(), SendingComplete: &SendingComplete{},
			EndpointRef: &EndpointReference{Value: 0x1234}}},
		{"ADD PARTY ACKNOWLEDGE", &Message{Type: MsgAddPartyAck, CallRef: crBack,
			EndpointRef: &EndpointReference{Flag: true, Value: 0x1234}}},
		{"ADD PARTY REJECT", &Message{Type: MsgAddPartyReject, CallRef: crBack,
			Causes: []CauseIE{NewCause(CauseUserBusy)}, EndpointRef: &EndpointReference{Flag: true, Value: 0x1234}}},
		{"DROP PARTY", &Message{Type: MsgDropParty, CallRef: cr,
			Causes: []CauseIE{NewCause(CauseNormalCallClearing)}, EndpointRef: &EndpointReference{Value: 0x1234}}},
		{"DROP PARTY ACKNOWLEDGE", &Message{Type: MsgDropPartyAck, CallRef: crBack,
			EndpointRef: &EndpointReference{Flag: true, Value: 0x1234}, Causes: []CauseIE{NewCause(CauseNormalCallClearing)}}},
		{"MODIFY REQUEST", &Message{Type: MsgModifyRequest, CallRef: cr,
			Traffic: &TrafficDescriptor{FwdPCR01: Some(200000), BwdPCR01: Some(150000)}}},
		{"MODIFY ACKNOWLEDGE", &Message{Type: MsgModifyAck, CallRef: crBack,
			Traffic:    &TrafficDescriptor{FwdPCR01: Some(200000), BwdPCR01: Some(150000)},
			ReportType: &ReportType{Type: ReportModificationConfirmation}}},
		{"MODIFY REJECT", &Message{Type: MsgModifyReject, CallRef: crBack,
			Causes: []CauseIE{NewCause(CauseCellRateUnavailable)}}},
	}
}

// extraFixtures exercise what fixtures do not: IEs kept raw, explicit
// instructions, non-AAL5 parameters, a called party without AESA, causes
// in the ATM Forum-specific coding.
func extraFixtures() []fixture {
	return []fixture{
		{"SETUP with unrecognised IEs", &Message{
			Type: MsgSetup, CallRef: CallRef{Value: MaxCallRef}, Instruction: NewMsgInstruction(true, MsgActionReportStatus),
			AAL:     &AALParameters{Type: AAL1, Other: []byte{0x85, 0x01, 0x86, 0x01}},
			Traffic: &TrafficDescriptor{FwdPCR01: Some(maxUint24), BwdPCR01: Some(0)},
			Bearer:  &BearerCapability{Class: BCOBA, UserPlane: PointToPoint},
			Called:  &CalledPartyNumber{Type: NumberInternational, Plan: PlanE164, Address: []byte("41223456789")},
			Calling: &CallingPartyNumber{Plan: PlanAESA, HasIndicators: true, Presentation: NumberNotAvailable},
			QoS:     &QoSParameter{},
			Unrecognized: []RawIE{
				{ID: 0x7f, Instruction: NewIEInstruction(CodingITU, true, IEActionDiscardIE), Contents: []byte{1, 2, 3}, Cause: CauseIEUnknown},
				{ID: IERestartIndicator, Contents: []byte{0x82}, Cause: CauseIEUnknown},
				{ID: IEBHLI, Contents: []byte{0x81, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Cause: CauseInvalidIEContents},
				{ID: 0x42, Instruction: NewIEInstruction(CodingNetwork, false, 0), Cause: CauseIEUnknown},
			},
		}},
		{"RELEASE COMPLETE without cause", &Message{Type: MsgReleaseComplete, CallRef: CallRef{Value: 1, Flag: true}}},
		// Causes only UNI 3.1 defines, in the ATM Forum-specific coding.
		{"STATUS with cause 104", &Message{Type: MsgStatus, CallRef: CallRef{Value: 2},
			Causes: []CauseIE{NewCause(CauseIncorrectLength)}, CallState: &CallStateIE{State: StateActive}}},
		{"RELEASE COMPLETE with causes 78 and 92", &Message{Type: MsgReleaseComplete, CallRef: CallRef{Value: 3, Flag: true},
			Causes: []CauseIE{NewCause(CauseAALUnsupported), NewCause(CauseTooManyAddParty)}}},
	}
}

func TestFixturesCoverEveryMessageType(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, f := range fixtures() {
		seen[f.m.Type] = true
		s := specs[f.m.Type]
		for i := ie(0); i < numIE; i++ {
			if got, want := f.m.count(i), int(s.rules[i].max); got != want {
				t.Errorf("%s: %d × %v, the message type allows %d: populate every IE", f.name, got, ieIDs[i], want)
			}
		}
	}
	for mt := range 256 {
		if specs[mt] != nil && !seen[MsgType(mt)] {
			t.Errorf("no fixture for %v", MsgType(mt))
		}
	}
	if len(seen) != 18 {
		t.Errorf("fixtures cover %d message types, want 18", len(seen))
	}
}
