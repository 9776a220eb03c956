package ndis_test

// A randomized state-machine test (pgregory.net/rapid): random sequences of
// client, call-manager and miniport operations, issued through the memdrv
// drivers and through the raw mediator API with handles taken from them, are
// checked after every step against a small reference model.
//
// The model predicts where every operation ends once the Loop has been
// drained (quiescence): call state, activation, parties, SAPs, statuses and
// data. Between quiescent points operations may be in flight; the model then
// keeps "locks" on the objects they touch, so that its predictions do not
// depend on the completion modes. Three races are driven on purpose, with the
// outcomes they allow: a remote close or link loss while sends are still
// out (the client must wait for them), a SAP deregistered while an offer to
// it is in flight (the offer may fail with INVALID_SAP), and a link loss
// while any operation is in flight (the VCs involved end "unsure": the call
// is gone, how it ended is read from the next quiescent snapshot and checked
// against the possible ends).
//
// Misuse is deliberate and must be refused with the documented status and
// rule, change nothing and run no handler; those violations are expected and
// counted, any other one fails the run.
//
// Invariants after every step: (1) a VC disappears only by its creator's
// successful delete, and appears only by a create (checked on the trace);
// (2) no completion runs twice, or for a request that did not pend; (3) a
// connected multipoint VC keeps a live party; every incoming VC is
// explained by an offer; the violations are exactly those the model caused.
// At quiescence also: nothing pending anywhere, every request finished
// exactly once with the predicted status, (5) the snapshot agrees with the
// model (VCs per client, call and activation state, kind, close status,
// parties, activation parameters, SAPs), the client-side counters agree, and
// (6) every send completed once with its status, every packet arrived in
// order, no receive is outstanding. (4) is checked on each refusal.
//
// Raise the effort locally with -rapid.checks=N (and -rapid.steps=N).

import (
	"flag"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// rapidTB lets ndistest, which wants a testing.TB, report through the current
// *rapid.T, so that a failure fails (and shrinks) the rapid run.
type rapidTB struct {
	testing.TB
	rt *rapid.T
}

func (r rapidTB) Helper()                      {}
func (r rapidTB) Error(args ...any)            { r.rt.Error(args...) }
func (r rapidTB) Errorf(f string, args ...any) { r.rt.Errorf(f, args...) }
func (r rapidTB) Fatal(args ...any)            { r.rt.Fatal(args...) }
func (r rapidTB) Fatalf(f string, args ...any) { r.rt.Fatalf(f, args...) }
func (r rapidTB) Fail()                        { r.rt.Fail() }
func (r rapidTB) FailNow()                     { r.rt.FailNow() }
func (r rapidTB) Failed() bool                 { return r.rt.Failed() }
func (r rapidTB) Log(args ...any)              { r.rt.Log(args...) }
func (r rapidTB) Logf(f string, args ...any)   { r.rt.Logf(f, args...) }

var (
	rapidServices = []string{"alpha", "beta", "gamma"}
	rapidRates    = []uint32{64_000, 125_000, 1_000_000}
	modeNames     = []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly}
)

const (
	nowhere   = "nowhere" // a service nobody registers
	rateLimit = 200_000   // what SetMaxTokenRate may cap calls at
)

// mCall is the model's call state of a VC at quiescence.
type mCall uint8

const (
	cIdle mCall = iota
	cConnected
	cClosed
)

func (c mCall) String() string { return [...]string{"IDLE", "CONNECTED", "CLOSED"}[c] }

type mClient struct {
	name   string
	c      *memdrv.Client
	af     *memdrv.ClientAf
	reject ndis.Status // what Accept answers; StatusSuccess accepts
	seenIn int         // incoming VCs accounted for
}

type mSap struct {
	owner *mClient
	svc   string
	cs    *memdrv.ClientSap
	live  bool // registered (as predicted)
}

type mParty struct {
	cp      *memdrv.ClientParty
	root    *mVc
	leaf    *mVc
	live    bool
	dropInd int // expected ProtocolClIncomingDropParty count
}

type mVc struct {
	owner    *mClient
	cv       *memdrv.ClientVc
	h        string
	incoming bool // created by the call manager
	gone     bool // deleted (by its creator)

	call        mCall
	closeSeen   bool        // an incoming close ended the last call
	closeStatus ndis.Status // its status
	multipoint  bool
	parties     []*mParty // root of a multipoint call: the live parties
	peer        *mVc      // point-to-point: the far end; leaf: the root
	party       *mParty   // leaf of a multipoint call
	rate        uint32    // transmit token rate of the active call

	// unsure: the link went down while an operation on the VC was in
	// flight; the call is gone, but how it ended (a failed setup or a
	// closed call, ...) is read from the next quiescent snapshot.
	unsure     bool
	downStatus ndis.Status
	prevSeen   bool // the close status predicted before the loss
	prevStatus ndis.Status

	offered, connected, closeInd, qosChanges int // expected client counters
	sendWant                                 []ndis.Status
	rxWant                                   []string
}

func (v *mVc) String() string {
	kind := "out"
	if v.incoming {
		kind = "in"
	}
	return fmt.Sprintf("%s(%s %s/%s)", v.h, v.owner.name, kind, v.call)
}

// liveParties returns a multipoint root's live parties.
func (v *mVc) liveParties() []*mParty {
	var out []*mParty
	for _, p := range v.parties {
		if p.live {
			out = append(out, p)
		}
	}
	return out
}

type wantResult struct {
	r      *memdrv.Result
	what   string
	status ndis.Status
	sync   bool // the request itself must have returned status

	// An offer to svc: if the SAP is deregistered while it is in flight,
	// it may instead end with alt (set then), and withdrawn updates the
	// model for that outcome.
	svc       string
	withdrawn func()
	alt       ndis.Status
	vcs       []*mVc // the VCs the request concerns
	anyStatus bool   // the link went down meanwhile: any final status
}

type machine struct {
	n       *ndistest.Net
	split   bool
	cmName  string
	clients []*mClient
	saps    []*mSap
	vcs     []*mVc
	parties []*mParty
	locks   map[any]bool  // objects an operation in flight touches
	sending map[*mVc]bool // VCs with sends not yet completed (R-CLOSE-1)

	maxRate    uint32
	rejectRate uint32
	expected   int // violations the model caused on purpose
	want       []wantResult
	prev       map[string]string // VC handle -> creator at the last check
	seq        int
}

// Lock keys: a SAP (de)registration in flight, an offer in flight to a service.
func svcKey(s string) string   { return "svc:" + s }
func offerKey(s string) string { return "offer:" + s }

// rapidCoverage counts what the generated runs reached: actions taken,
// outcomes predicted, misuse rules. With -v it is logged, to see that the
// generator gets deep into the state space.
var rapidCoverage = map[string]int{}

func logCoverage(t *testing.T) {
	keys := make([]string, 0, len(rapidCoverage))
	for k := range rapidCoverage {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-50s %6d", k, rapidCoverage[k])
	}
	t.Logf("coverage:%s", b.String())
}

// rapidSteps is the default number of actions per run: deep flows (a
// multipoint call, parties added and dropped, a QoS change, data, a remote
// close) need more than rapid's default of 30. -rapid.steps overrides it.
const rapidSteps = "100"

// TestRapidStateMachine: see the top of the file. The default 100 runs take
// a few seconds under -race; -rapid.checks=2000 is the local stress setting.
func TestRapidStateMachine(t *testing.T) {
	if f := flag.Lookup("rapid.steps"); f != nil && f.Value.String() == "30" {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.steps" })
		if !set {
			f.Value.Set(rapidSteps)
			defer f.Value.Set("30")
		}
	}
	clear(rapidCoverage)
	if testing.Verbose() {
		defer logCoverage(t)
	}
	rapid.Check(t, func(rt *rapid.T) {
		m := newMachine(t, rt)
		rt.Repeat(countActions(map[string]func(*rapid.T){
			"":                m.check,
			"Vc":              m.actVc,
			"MakeCall":        m.actMakeCall,
			"AddParty":        m.actAddParty,
			"DropParty":       m.actDropParty,
			"CloseCall":       m.actCloseCall,
			"CloseFromCallee": m.actCloseFromCallee,
			"ModifyQoS":       m.actModifyQoS,
			"Send":            m.actSend,
			"Sap":             m.actSap,
			"LinkDown":        m.actLinkDown,
			"Configure":       m.actConfigure,
			"Run":             m.actRun,
			"MisuseClient": m.misuse(m.misuseSap, m.misuseDelete, m.misuseClose, m.misuseSend,
				m.misuseCallOrQoS, m.misuseParty, m.misuseIncomingCall),
			"MisuseDriver":     m.misuse(m.misuseCallManager, m.misuseMiniport),
			"MisuseDeadHandle": m.misuse(m.misuseDeadHandle),
		}))
		m.finish(rt)
	})
}

// countActions wraps each action to count it in rapidCoverage.
func countActions(acts map[string]func(*rapid.T)) map[string]func(*rapid.T) {
	out := map[string]func(*rapid.T){}
	for k, f := range acts {
		if k == "" {
			out[k] = f
			continue
		}
		out[k] = func(t *rapid.T) { f(t); rapidCoverage["action "+k]++ }
	}
	return out
}

func newMachine(t *testing.T, rt *rapid.T) *machine {
	topo := rapid.SampledFrom(ndistest.Topologies).Draw(rt, "topology")
	n := ndistest.New(rapidTB{t, rt}, topo, rapid.SampledFrom(modeNames).Draw(rt, "mode"))
	m := &machine{n: n, split: topo == ndistest.Split, locks: map[any]bool{}, sending: map[*mVc]bool{}, prev: map[string]string{}}
	m.cmName = "mcm"
	if m.split {
		m.cmName = "cm"
	}
	for _, c := range []*memdrv.Client{n.Caller, n.Callee, n.Third} {
		af := c.Af()
		if af == nil || af.Open.Status != ndis.StatusSuccess || !af.Open.ExactlyOnce() {
			rt.Fatalf("%s: AF open did not succeed: %+v", c.Name, af)
		}
		m.clients = append(m.clients, &mClient{name: c.Name, c: c, af: af})
	}
	// Each driver gets its own completion mode.
	m.setCMMode(rapid.SampledFrom(modeNames).Draw(rt, "cm mode"))
	if m.split {
		n.Miniport.SetMode(rapid.SampledFrom(modeNames).Draw(rt, "miniport mode"))
	}
	for _, c := range m.clients {
		c.c.SetMode(rapid.SampledFrom(modeNames).Draw(rt, c.name+" mode"))
	}
	rt.Logf("topology %s", topo)
	// A head start, so that calls can succeed early: some services
	// registered, one VC per client.
	for _, svc := range rapidServices {
		if rapid.Bool().Draw(rt, "register "+svc) {
			m.registerSap(rt, pick(rt, svc+" holder", m.clients), svc)
		}
	}
	for _, c := range m.clients {
		m.createVc(rt, c)
	}
	n.Run()
	s := n.M.Snapshot()
	for _, v := range s.Vcs {
		m.prev[v.Handle] = v.Creator
	}
	n.Mark()
	return m
}

func (m *machine) setCMMode(mode memdrv.Mode) {
	if m.split {
		m.n.CM.SetMode(mode)
	} else {
		m.n.MCM.SetMode(mode)
	}
}

func (m *machine) quiet() bool { return m.n.Fab.Len() == 0 }

func (m *machine) locked(keys ...any) bool {
	for _, k := range keys {
		if k != nil && m.locks[k] {
			return true
		}
	}
	return false
}

// lockIfBusy marks keys as touched by work still in flight.
func (m *machine) lockIfBusy(keys ...any) {
	if m.quiet() {
		return
	}
	for _, k := range keys {
		switch x := k.(type) {
		case *mVc:
			if x != nil {
				m.locks[x] = true
			}
		case *mClient:
			if x != nil {
				m.locks[x] = true
			}
		case string:
			m.locks[x] = true
		}
	}
}

func (m *machine) anyVcLocked() bool {
	for k := range m.locks {
		if _, ok := k.(*mVc); ok {
			return true
		}
	}
	return false
}

func pick[T any](t *rapid.T, label string, xs []T) T {
	if len(xs) == 0 {
		t.Skip("no candidate")
	}
	return xs[rapid.IntRange(0, len(xs)-1).Draw(t, label)]
}

func (m *machine) maybeDrain(t *rapid.T) {
	if rapid.Bool().Draw(t, "drain") {
		m.n.Run()
	}
}

func rapidParams(svc string, rate uint32) *ndis.CallParameters {
	fs := ndis.Flowspec{TokenRate: rate, TokenBucketSize: 9188, PeakBandwidth: 2 * rate,
		Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified,
		ServiceType: ndis.ServiceGuaranteed, MaxSduSize: 9180, MinimumPolicedSize: 64}
	return memdrv.CallParams(svc, fs, fs)
}

func (m *machine) expect(r *memdrv.Result, st ndis.Status, sync bool, format string, args ...any) {
	m.want = append(m.want, wantResult{r: r, what: fmt.Sprintf(format, args...), status: st, sync: sync})
}

func (m *machine) addVc(v *mVc) *mVc {
	m.vcs = append(m.vcs, v)
	return v
}

// holder is the client whose live SAP holds svc, or nil.
func (m *machine) holder(svc string) *mClient {
	for _, s := range m.saps {
		if s.live && s.svc == svc {
			return s.owner
		}
	}
	return nil
}

// freshIncoming returns, per client, the incoming VCs not accounted for yet,
// and accounts for them.
func (m *machine) freshIncoming() map[*mClient][]*memdrv.ClientVc {
	out := map[*mClient][]*memdrv.ClientVc{}
	for _, c := range m.clients {
		in := c.c.Incoming()
		if len(in) > c.seenIn {
			out[c] = in[c.seenIn:]
			c.seenIn = len(in)
		}
	}
	return out
}

// adoptLeaf takes the one VC the call manager must have created at target
// for an offer from root.
func (m *machine) adoptLeaf(t *rapid.T, fresh map[*mClient][]*memdrv.ClientVc, target *mClient, root *mVc, rate uint32) *mVc {
	for c, vs := range fresh {
		if c != target || len(vs) != 1 {
			t.Fatalf("offer from %v to %s: unexpected incoming VCs %v at %s\n%s", root, target.name, vs, c.name, m.n.Dump())
		}
	}
	vs := fresh[target]
	if len(vs) != 1 {
		t.Fatalf("offer from %v to %s created no incoming VC\n%s", root, target.name, m.n.Dump())
	}
	return m.addVc(&mVc{owner: target, cv: vs[0], h: vs[0].H.String(), incoming: true, rate: rate, peer: root})
}

// services lists the services an offer may target now: nowhere, and every
// service whose SAP is not being registered or deregistered. (An offer in
// flight locks its target client only against a change of its answer.)
func (m *machine) services() []string {
	out := []string{nowhere}
	for _, s := range rapidServices {
		if !m.locked(svcKey(s)) {
			out = append(out, s)
		}
	}
	return out
}

// pickService picks the destination of an offer, mostly a registered one.
func (m *machine) pickService(t *rapid.T) string {
	all := m.services()
	var registered []string
	for _, s := range all {
		if m.holder(s) != nil {
			registered = append(registered, s)
		}
	}
	if len(registered) > 0 && rapid.IntRange(0, 3).Draw(t, "registered") > 0 {
		return pick(t, "service", registered)
	}
	return pick(t, "service", all)
}

// leaves are the far ends a VC's call reaches.
func (v *mVc) leaves() []*mVc {
	if v.incoming {
		if v.peer != nil {
			return []*mVc{v.peer}
		}
		return nil
	}
	if v.multipoint {
		var out []*mVc
		for _, p := range v.liveParties() {
			out = append(out, p.leaf)
		}
		return out
	}
	if v.peer != nil {
		return []*mVc{v.peer}
	}
	return nil
}

func (m *machine) lockedAny(vs []*mVc) bool {
	for _, v := range vs {
		if m.locks[v] {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Flow actions: proper use, with predicted outcomes.

// actVc creates a VC, or deletes one as its creator.
func (m *machine) actVc(t *rapid.T) {
	if m.deletable() != nil && rapid.Bool().Draw(t, "delete") {
		m.actDeleteVc(t)
		return
	}
	m.createVc(t, pick(t, "client", m.clients))
}

// actSap registers a SAP, or deregisters one (less often).
func (m *machine) actSap(t *rapid.T) {
	if m.deregistrable() != nil && rapid.IntRange(0, 2).Draw(t, "deregister") == 0 {
		m.actDeregisterSap(t)
		return
	}
	m.actRegisterSap(t)
}

func (m *machine) createVc(t *rapid.T, c *mClient) *mVc {
	cv, st := c.c.CreateVc(c.af)
	if st != ndis.StatusSuccess {
		t.Fatalf("%s CreateVc: %v", c.name, st)
	}
	v := m.addVc(&mVc{owner: c, cv: cv, h: cv.H.String()})
	t.Logf("%s CreateVc -> %s", c.name, v.h)
	return v
}

func (m *machine) actMakeCall(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if !v.incoming && !v.gone && !m.locked(v) && (v.call == cIdle || v.call == cClosed && !(v.closeSeen && v.closeStatus != ndis.StatusSuccess)) {
			cands = append(cands, v)
		}
	}
	var v *mVc
	if len(cands) == 0 {
		v = m.createVc(t, pick(t, "client", m.clients))
	} else {
		v = pick(t, "vc", cands)
	}
	svc := m.pickService(t)
	mp := rapid.Bool().Draw(t, "multipoint")
	rate := pick(t, "rate", rapidRates)
	target := m.holder(svc)
	t.Logf("%s MakeCall(%s, %s, multipoint=%v, rate=%d)", v.owner.name, v, svc, mp, rate)
	cp, _ := v.owner.c.MakeCall(v.cv, rapidParams(svc, rate), mp)
	fresh := m.freshIncoming()

	var want ndis.Status
	var leaf *mVc
	sync := false
	switch {
	case m.maxRate != 0 && rate > m.maxRate:
		want, sync = ndis.StatusCellrateNotAvailable, true
	case target == nil:
		want = ndis.StatusInvalidSap
	default:
		leaf = m.adoptLeaf(t, fresh, target, v, rate)
		switch {
		case m.split && m.rejectRate == rate:
			want, leaf.gone = ndis.StatusInvalidData, true
		case target.reject != ndis.StatusSuccess:
			want, leaf.gone, leaf.offered = ndis.StatusFailure, true, 1
		default:
			want, leaf.call, leaf.offered, leaf.connected = ndis.StatusSuccess, cConnected, 1, 1
		}
	}
	if leaf == nil && len(fresh) > 0 {
		t.Fatalf("failed MakeCall created incoming VCs %v", fresh)
	}
	m.expect(&v.cv.Make, want, sync, "MakeCall on %s to %s", v.h, svc)
	m.want[len(m.want)-1].vcs = []*mVc{v, leaf}
	if leaf != nil {
		w := &m.want[len(m.want)-1]
		w.svc, w.withdrawn = svc, func() {
			v.call, v.multipoint, v.parties = cIdle, false, nil
			for _, p := range m.parties {
				if p.root == v && p.leaf == leaf {
					p.live = false
				}
			}
			leaf.gone, leaf.offered, leaf.connected = true, 0, 0
		}
	}
	rapidCoverage[fmt.Sprintf("make mp=%v %v", mp, want)]++
	var p *mParty
	if mp {
		p = &mParty{cp: cp, root: v, leaf: leaf, live: want == ndis.StatusSuccess}
		m.parties = append(m.parties, p)
	}
	v.closeSeen, v.closeStatus, v.parties, v.multipoint = false, 0, nil, false
	if want == ndis.StatusSuccess {
		v.call, v.rate, v.multipoint = cConnected, rate, mp
		if mp {
			v.parties, leaf.party = []*mParty{p}, p
		} else {
			v.peer = leaf
		}
	} else {
		v.call = cIdle
	}
	m.lockIfBusy(v, leaf, offerKey(svc), target)
	m.maybeDrain(t)
}

func (m *machine) actAddParty(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if !v.incoming && !v.gone && v.call == cConnected && v.multipoint && !m.locked(v) {
			cands = append(cands, v)
		}
	}
	v := pick(t, "root", cands)
	svc := m.pickService(t)
	rate := pick(t, "rate", rapidRates)
	target := m.holder(svc)
	t.Logf("%s AddParty(%s, %s, rate=%d)", v.owner.name, v, svc, rate)
	cp, _ := v.owner.c.AddParty(v.cv, rapidParams(svc, rate))
	fresh := m.freshIncoming()
	var want ndis.Status
	var leaf *mVc
	if target == nil {
		want = ndis.StatusInvalidSap
		if len(fresh) > 0 {
			t.Fatalf("AddParty to nowhere created incoming VCs %v", fresh)
		}
	} else {
		leaf = m.adoptLeaf(t, fresh, target, v, rate)
		switch {
		case m.split && m.rejectRate == rate:
			want, leaf.gone = ndis.StatusInvalidData, true
		case target.reject != ndis.StatusSuccess:
			want, leaf.gone, leaf.offered = ndis.StatusFailure, true, 1
		default:
			want, leaf.call, leaf.offered, leaf.connected = ndis.StatusSuccess, cConnected, 1, 1
		}
	}
	m.expect(&cp.Add, want, false, "AddParty on %s to %s", v.h, svc)
	m.want[len(m.want)-1].vcs = []*mVc{v, leaf}
	if leaf != nil {
		w := &m.want[len(m.want)-1]
		w.svc = svc
	}
	rapidCoverage[fmt.Sprintf("addparty %v", want)]++
	p := &mParty{cp: cp, root: v, leaf: leaf, live: want == ndis.StatusSuccess}
	m.parties = append(m.parties, p)
	if p.live {
		v.parties = append(v.parties, p)
		leaf.party = p
	}
	if leaf != nil {
		m.want[len(m.want)-1].withdrawn = func() {
			p.live = false
			v.parties = slices.DeleteFunc(v.parties, func(q *mParty) bool { return q == p })
			leaf.gone, leaf.offered, leaf.connected = true, 0, 0
		}
	}
	m.lockIfBusy(v, leaf, offerKey(svc), target)
	m.maybeDrain(t)
}

func (m *machine) actDropParty(t *rapid.T) {
	var cands []*mParty
	for _, v := range m.vcs {
		if v.gone || v.incoming || v.call != cConnected || !v.multipoint || m.locked(v) {
			continue
		}
		live := v.liveParties()
		if len(live) < 2 {
			continue
		}
		for _, p := range live {
			if !m.locked(p.leaf) {
				cands = append(cands, p)
			}
		}
	}
	p := pick(t, "party", cands)
	v := p.root
	t.Logf("%s DropParty(%s on %s, leaf %s)", v.owner.name, p.cp.H, v, p.leaf)
	v.owner.c.DropParty(p.cp)
	m.expect(&p.cp.Drop, ndis.StatusSuccess, false, "DropParty %s", p.cp.H)
	m.want[len(m.want)-1].vcs = []*mVc{v, p.leaf}
	p.live = false
	m.leafReleased(p.leaf, ndis.StatusSuccess)
	m.lockIfBusy(v, p.leaf)
	m.maybeDrain(t)
}

// leafReleased: the call manager released a leaf's call with st; its client
// closes it and the call manager deletes it.
func (m *machine) leafReleased(leaf *mVc, st ndis.Status) {
	leaf.closeInd++
	leaf.closeSeen, leaf.closeStatus = true, st
	leaf.call, leaf.gone = cClosed, true
}

// rootClosed: a root's call ends after the client's own close (seen=false)
// or an incoming close with st.
func (m *machine) rootClosed(v *mVc, seen bool, st ndis.Status) {
	v.call = cClosed
	v.closeSeen, v.closeStatus = seen, st
	if seen {
		v.closeInd++
	}
	for _, p := range v.parties {
		p.live = false
	}
	v.parties = nil
}

func (m *machine) actCloseCall(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if v.incoming || v.gone || v.call != cConnected || m.locked(v) || m.sending[v] || m.lockedAny(v.leaves()) {
			continue
		}
		if v.multipoint && len(v.liveParties()) != 1 {
			continue
		}
		cands = append(cands, v)
	}
	v := pick(t, "vc", cands)
	leaves := v.leaves()
	t.Logf("%s CloseCall(%s)", v.owner.name, v)
	v.owner.c.CloseCall(v.cv)
	m.expect(&v.cv.Close, ndis.StatusSuccess, false, "CloseCall on %s", v.h)
	m.want[len(m.want)-1].vcs = append([]*mVc{v}, leaves...)
	for _, l := range leaves {
		m.leafReleased(l, ndis.StatusSuccess)
	}
	m.rootClosed(v, false, 0)
	m.lockIfBusy(v)
	for _, l := range leaves {
		m.lockIfBusy(l)
	}
	m.maybeDrain(t)
}

func (m *machine) actCloseFromCallee(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if v.incoming && !v.gone && v.call == cConnected && !m.locked(v, v.peer) && !m.sending[v] {
			cands = append(cands, v)
		}
	}
	leaf := pick(t, "leaf", cands)
	root := leaf.peer
	t.Logf("%s CloseCall(%s) from the callee side, root %s", leaf.owner.name, leaf, root)
	leaf.owner.c.CloseCall(leaf.cv)
	m.expect(&leaf.cv.Close, ndis.StatusSuccess, false, "callee CloseCall on %s", leaf.h)
	m.want[len(m.want)-1].vcs = []*mVc{leaf, root}
	leaf.call, leaf.gone = cClosed, true // the call manager deletes its VC
	if p := leaf.party; p != nil {
		p.live = false
		if len(root.liveParties()) > 0 {
			p.dropInd++ // the client drops the leaf's party
		} else {
			m.rootClosed(root, true, ndis.StatusSuccess)
		}
	} else {
		m.rootClosed(root, true, ndis.StatusSuccess)
	}
	m.lockIfBusy(leaf, root)
	m.maybeDrain(t)
}

func (m *machine) actModifyQoS(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if v.gone || v.call != cConnected || m.locked(v) {
			continue
		}
		if !(v.multipoint && !v.incoming) && m.locked(v.peer) {
			continue
		}
		cands = append(cands, v)
	}
	v := pick(t, "vc", cands)
	rate := pick(t, "rate", rapidRates)
	t.Logf("%s ModifyQoS(%s, rate=%d)", v.owner.name, v, rate)
	v.owner.c.ModifyQoS(v.cv, rapidParams("qos", rate))
	var want ndis.Status
	switch {
	case v.multipoint && !v.incoming:
		want = ndis.StatusNotSupported
	case m.maxRate != 0 && rate > m.maxRate:
		want = ndis.StatusFailure
	case m.split && m.rejectRate == rate:
		want = ndis.StatusFailure // the far end's miniport refuses it (R-QOS-3)
	default:
		want = ndis.StatusSuccess
		v.rate, v.peer.rate = rate, rate
		v.peer.qosChanges++
	}
	m.expect(&v.cv.QoS, want, false, "ModifyQoS on %s to %d", v.h, rate)
	m.want[len(m.want)-1].vcs = []*mVc{v, v.peer}
	rapidCoverage[fmt.Sprintf("qos %v", want)]++
	m.lockIfBusy(v, v.peer)
	m.maybeDrain(t)
}

func (m *machine) actSend(t *rapid.T) {
	var cands []*mVc
	for _, v := range m.vcs {
		if v.gone || v.call != cConnected || m.locked(v) {
			continue
		}
		var to []*mVc
		if !(v.incoming && v.party != nil) { // a multipoint leaf reaches nobody
			to = v.leaves()
		}
		if m.lockedAny(to) {
			continue
		}
		cands = append(cands, v)
	}
	v := pick(t, "vc", cands)
	k := rapid.IntRange(1, 3).Draw(t, "packets")
	var pkts [][]byte
	var strs []string
	for i := 0; i < k; i++ {
		m.seq++
		s := fmt.Sprintf("%s:%d", v.h, m.seq)
		pkts, strs = append(pkts, []byte(s)), append(strs, s)
	}
	t.Logf("%s Send(%s, %q)", v.owner.name, v, strs)
	v.owner.c.Send(v.cv, pkts...)
	for range pkts {
		v.sendWant = append(v.sendWant, ndis.StatusSuccess)
	}
	if !(v.incoming && v.party != nil) {
		for _, l := range v.leaves() {
			l.rxWant = append(l.rxWant, strs...)
		}
	}
	if !m.quiet() {
		m.sending[v] = true // sends outstanding: its client may not close it yet (R-CLOSE-1)
	}
	m.maybeDrain(t)
}

func (m *machine) deletable() []*mVc {
	var cands []*mVc
	for _, v := range m.vcs {
		if !v.incoming && !v.gone && !m.locked(v) && (v.call == cIdle || v.call == cClosed) {
			cands = append(cands, v)
		}
	}
	return cands
}

func (m *machine) actDeleteVc(t *rapid.T) {
	v := pick(t, "vc", m.deletable())
	t.Logf("%s DeleteVc(%s)", v.owner.name, v)
	if st := v.owner.c.DeleteVc(v.cv); st != ndis.StatusSuccess {
		t.Fatalf("DeleteVc(%v) by its creator: %v\n%s", v, st, m.n.Dump())
	}
	v.gone = true
}

func (m *machine) actRegisterSap(t *rapid.T) {
	var svcs []string
	for _, s := range rapidServices {
		if !m.locked(svcKey(s)) {
			svcs = append(svcs, s)
		}
	}
	svc := pick(t, "service", svcs)
	m.registerSap(t, pick(t, "client", m.clients), svc)
	m.maybeDrain(t)
}

func (m *machine) registerSap(t *rapid.T, c *mClient, svc string) {
	want := ndis.StatusSuccess
	if m.holder(svc) != nil {
		want = ndis.StatusInvalidData // R-SAP-2: another SAP holds it
	}
	t.Logf("%s RegisterSap(%s) want %v", c.name, svc, want)
	cs := c.c.RegisterSap(c.af, svc)
	m.expect(&cs.Register, want, false, "RegisterSap %s by %s", svc, c.name)
	m.saps = append(m.saps, &mSap{owner: c, svc: svc, cs: cs, live: want == ndis.StatusSuccess})
	m.lockIfBusy(svcKey(svc))
}

// deregistrable SAPs: those not being (de)registered. Offers to them may be
// in flight: they may then fail with INVALID_SAP instead (R-SAP-5).
func (m *machine) deregistrable() []*mSap {
	var cands []*mSap
	for _, s := range m.saps {
		if s.live && !m.locked(svcKey(s.svc)) {
			cands = append(cands, s)
		}
	}
	return cands
}

func (m *machine) actDeregisterSap(t *rapid.T) {
	s := pick(t, "sap", m.deregistrable())
	t.Logf("%s DeregisterSap(%s %s)", s.owner.name, s.svc, s.cs.H)
	if st := s.owner.c.DeregisterSap(s.cs); st != ndis.StatusPending {
		t.Fatalf("NdisClDeregisterSap returned %v; an accepted request always pends (spec §9.10)", st)
	}
	m.expect(&s.cs.Deregister, ndis.StatusSuccess, false, "DeregisterSap %s", s.svc)
	s.live = false
	for i := range m.want {
		if w := &m.want[i]; w.svc == s.svc && w.withdrawn != nil && !w.r.Done {
			w.alt = ndis.StatusInvalidSap
		}
	}
	m.lockIfBusy(svcKey(s.svc))
	m.maybeDrain(t)
}

func (m *machine) actLinkDown(t *rapid.T) {
	busy := false
	for _, v := range m.vcs {
		busy = busy || !v.gone && (v.call == cConnected || m.locks[v])
	}
	if !busy {
		t.Skip("no call to clear")
	}
	st := ndis.StatusDestOutOfOrder
	if m.split {
		t.Logf("miniport IndicateLinkDown")
		m.n.Miniport.IndicateLinkDown()
	} else {
		st = rapid.SampledFrom([]ndis.Status{ndis.StatusDestOutOfOrder, ndis.StatusSuccess}).Draw(t, "close status")
		t.Logf("mcm LinkDown(%v)", st)
		m.n.MCM.LinkDown(st)
	}
	// Operations in flight race with the loss: their VCs end unsure.
	for i := range m.want {
		w := &m.want[i]
		for _, v := range w.vcs {
			if v != nil && m.locks[v] {
				w.anyStatus = true
			}
		}
		if w.anyStatus {
			for _, v := range w.vcs {
				if v != nil && !v.unsure && (v.call == cConnected || m.locks[v]) {
					v.unsure, v.downStatus = true, st
					v.prevSeen, v.prevStatus = v.closeSeen, v.closeStatus
				}
			}
		}
	}
	var touched []any
	for _, v := range m.vcs {
		if v.unsure && v.downStatus == st && !v.gone {
			touched = append(touched, v)
			continue
		}
		if v.gone || v.call != cConnected {
			continue
		}
		touched = append(touched, v)
		if v.incoming {
			m.leafReleased(v, st)
		} else {
			m.rootClosed(v, true, st)
		}
	}
	m.lockIfBusy(touched...)
	m.maybeDrain(t)
}

// resolveUnsure reads how the calls the link loss raced with ended, checks
// it is one of the possible ends, and brings the model up to date.
func (m *machine) resolveUnsure(fail func(string, ...any), vcs map[string]ndis.VcInfo) {
	for _, v := range m.vcs {
		if !v.unsure {
			continue
		}
		v.unsure = false
		info, live := vcs[v.h]
		rapidCoverage[fmt.Sprintf("unsure after link loss: incoming=%v -> %s", v.incoming, info.Call)]++
		cv := v.cv
		if v.incoming {
			// Every leaf goes: never offered, rejected, or closed and deleted.
			if live || cv.Offered > 1 || cv.Connected > cv.Offered || cv.CloseIndicated > v.closeInd+1 {
				fail("%v after the link loss: live=%v offered %d connected %d closes %d", v, live, cv.Offered, cv.Connected, cv.CloseIndicated)
			}
			v.gone, v.call = true, cClosed
			v.offered, v.connected, v.closeInd = cv.Offered, cv.Connected, cv.CloseIndicated
			v.qosChanges = cv.QoSChanges
			continue
		}
		// A root: its setup failed (IDLE), or it was closed, after an
		// incoming close with the link-down status or by its own close.
		switch {
		case !live:
			fail("%v vanished after the link loss", v)
		case info.Activation != "INACTIVE" || (info.Call != "IDLE" && info.Call != "CLOSED"):
			fail("%v after the link loss: %s/%s", v, info.Activation, info.Call)
		case info.CloseStatus != "" && info.CloseStatus != v.downStatus.String() && !(v.prevSeen && info.CloseStatus == v.prevStatus.String()):
			fail("%v closed with %s, the link went down with %v", v, info.CloseStatus, v.downStatus)
		case cv.CloseIndicated > v.closeInd+1 || cv.QoSChanges > v.qosChanges:
			// A QoS change in flight may have died with the link.
			fail("%v: %d incoming closes (model %d), %d QoS changes (model at most %d)", v, cv.CloseIndicated, v.closeInd, cv.QoSChanges, v.qosChanges)
		}
		v.call = map[string]mCall{"IDLE": cIdle, "CLOSED": cClosed}[info.Call]
		v.closeSeen, v.closeStatus = info.CloseStatus != "", 0
		switch {
		case v.closeSeen && info.CloseStatus == v.downStatus.String():
			v.closeStatus = v.downStatus
		case v.closeSeen:
			v.closeStatus = v.prevStatus
		}
		v.closeInd, v.qosChanges = cv.CloseIndicated, cv.QoSChanges
		for _, p := range m.parties {
			if p.root == v {
				p.live, p.dropInd = false, p.cp.DropIndicated
			}
		}
		v.parties = nil
	}
}

// actConfigure changes a driver's behaviour: a completion mode, a client's
// answer to offers, or a rate limit.
func (m *machine) actConfigure(t *rapid.T) {
	switch rapid.IntRange(0, 2).Draw(t, "setting") {
	case 0:
		m.actSetMode(t)
	case 1:
		m.actSetAccept(t)
	default:
		m.actSetLimits(t)
	}
}

func (m *machine) actSetAccept(t *rapid.T) {
	var cands []*mClient
	for _, c := range m.clients {
		if !m.locked(c) {
			cands = append(cands, c)
		}
	}
	c := pick(t, "client", cands)
	verdict := ndis.StatusSuccess
	if rapid.Bool().Draw(t, "reject") {
		verdict = rapid.SampledFrom([]ndis.Status{ndis.StatusFailure, ndis.StatusNotAccepted, ndis.StatusResources}).Draw(t, "verdict")
	}
	t.Logf("%s Accept -> %v", c.name, verdict)
	c.reject = verdict
	c.c.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return verdict }
}

func (m *machine) actSetMode(t *rapid.T) {
	who := []string{m.cmName}
	if m.split {
		who = append(who, "miniport")
	}
	for _, c := range m.clients {
		who = append(who, c.name)
	}
	w := pick(t, "driver", who)
	mode := rapid.SampledFrom(modeNames).Draw(t, "mode")
	t.Logf("%s SetMode(%v)", w, mode)
	switch w {
	case m.cmName:
		m.setCMMode(mode)
	case "miniport":
		m.n.Miniport.SetMode(mode)
	default:
		for _, c := range m.clients {
			if c.name == w {
				c.c.SetMode(mode)
				c.c.CloseLater = rapid.Bool().Draw(t, "close later")
			}
		}
	}
}

func (m *machine) actSetLimits(t *rapid.T) {
	if m.split && rapid.Bool().Draw(t, "miniport") {
		// Activations may be in flight: change the miniport's limit only
		// when none is.
		if m.anyVcLocked() {
			t.Skip("activations in flight")
		}
		m.rejectRate = rapid.SampledFrom([]uint32{0, 125_000, 1_000_000}).Draw(t, "reject rate")
		t.Logf("miniport RejectTokenRate(%d)", m.rejectRate)
		m.n.Miniport.RejectTokenRate(m.rejectRate)
		return
	}
	m.maxRate = rapid.SampledFrom([]uint32{0, rateLimit}).Draw(t, "max rate")
	t.Logf("%s SetMaxTokenRate(%d)", m.cmName, m.maxRate)
	if m.split {
		m.n.CM.SetMaxTokenRate(m.maxRate)
	} else {
		m.n.MCM.SetMaxTokenRate(m.maxRate)
	}
}

func (m *machine) actRun(t *rapid.T) {
	t.Logf("Run (%d queued)", m.n.Fab.Len())
	m.n.Run()
}

// ---------------------------------------------------------------------------
// Misuse: refused with the documented status and rule, changing nothing.

type refusal struct {
	rule string
	st   ndis.Status
}

// normalized drops what a refused request legitimately changes: violation
// and refusal counters.
func normalized(s ndis.Snapshot) ndis.Snapshot {
	s.Counters.Violations, s.Counters.SendsRefused, s.Counters.ReceivesDropped = 0, 0, 0
	vcs := append([]ndis.VcInfo(nil), s.Vcs...)
	for i := range vcs {
		vcs[i].Stats.SendsRefused, vcs[i].Stats.RxDrops = 0, 0
	}
	s.Vcs = vcs
	return s
}

func (m *machine) refused(t *rapid.T, what string, want refusal, call func() ndis.Status) {
	rapidCoverage["misuse "+want.rule]++
	t.Logf("misuse: %s -> expect %v (%s)", what, want.st, want.rule)
	before := normalized(m.n.M.Snapshot())
	nv, ne := len(m.n.Seen()), len(m.n.Events())
	m.n.Expect(want.rule)
	got := call()
	if got != want.st {
		t.Fatalf("%s returned %v, want %v (%s)\n%s", what, got, want.st, want.rule, m.n.Dump())
	}
	seen := m.n.Seen()[nv:]
	if len(seen) != 1 || seen[0].Rule != want.rule || seen[0].Status != want.st {
		t.Fatalf("%s: violations %v, want one %s with %v", what, seen, want.rule, want.st)
	}
	m.expected++
	if after := normalized(m.n.M.Snapshot()); !reflect.DeepEqual(before, after) {
		t.Fatalf("%s was refused but changed the mediator:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
	for _, e := range m.n.Events()[ne:] {
		if e.Kind == ndis.EventUpcall {
			t.Fatalf("%s was refused but a handler ran: %v", what, e)
		}
	}
}

func (m *machine) snapVcs() map[string]ndis.VcInfo {
	out := map[string]ndis.VcInfo{}
	for _, v := range m.n.M.Snapshot().Vcs {
		out[v.Handle] = v
	}
	return out
}

func (m *machine) snapSaps() map[string]ndis.SapInfo {
	out := map[string]ndis.SapInfo{}
	for _, s := range m.n.M.Snapshot().Saps {
		out[s.Handle] = s
	}
	return out
}

type misuseCase struct {
	what string
	want refusal
	call func() ndis.Status
}

// misuse returns an action that picks a kind of misuse among builders (those
// with a case now), then one case of it.
func (m *machine) misuse(builders ...func() []misuseCase) func(*rapid.T) {
	return func(t *rapid.T) {
		var kinds [][]misuseCase
		for _, b := range builders {
			if cases := b(); len(cases) > 0 {
				kinds = append(kinds, cases)
			}
		}
		kind := pick(t, "misuse kind", kinds)
		c := pick(t, "misuse", kind)
		m.refused(t, c.what, c.want, c.call)
	}
}

func (m *machine) misuseSap() []misuseCase {
	saps := m.snapSaps()
	var cases []misuseCase
	for _, s := range m.saps {
		h := s.cs.H
		var info ndis.SapInfo
		ok := false
		if h != nil {
			info, ok = saps[h.String()]
		}
		for _, c := range m.clients {
			var want refusal
			switch {
			case h == nil || c != s.owner:
				want = refusal{"R-GEN-8", ndis.StatusFailure}
			case ok && info.State == "REGISTERED":
				continue // a proper deregistration
			default: // dead, deregistering or still registering: R-SAP-6
				want = refusal{"R-SAP-6", ndis.StatusFailure}
			}
			b := c.c.Binding()
			cases = append(cases, misuseCase{fmt.Sprintf("%s deregisters %s's SAP %v (%s)", c.name, s.owner.name, h, s.svc), want,
				func() ndis.Status { return b.ClDeregisterSap(h) }})
		}
	}
	return cases
}

func (m *machine) cmDelete(vc *ndis.Vc) ndis.Status {
	if m.split {
		return m.n.CM.Binding().CoDeleteVc(vc)
	}
	return m.n.MCM.Adapter().MCmDeleteVc(vc)
}

func (m *machine) misuseDelete() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		h := v.cv.H
		info, live := vcs[v.h]
		creator := v.owner.name
		if v.incoming {
			creator = m.cmName
		}
		// Deletion by anyone but the creator (R-VC-5), or of a dead handle (R-VC-9).
		wrong := refusal{"R-VC-5", ndis.StatusFailure}
		if !live {
			wrong = refusal{"R-VC-9", ndis.StatusFailure}
		}
		for _, c := range m.clients {
			if c.name == creator && live {
				continue
			}
			b := c.c.Binding()
			cases = append(cases, misuseCase{fmt.Sprintf("%s deletes %v", c.name, v), wrong, func() ndis.Status { return b.CoDeleteVc(h) }})
		}
		if creator != m.cmName || !live {
			cases = append(cases, misuseCase{fmt.Sprintf("%s deletes %v", m.cmName, v), wrong, func() ndis.Status { return m.cmDelete(h) }})
		}
		// Deletion by the creator while a call or activation is outstanding (R-VC-6, R-VC-7).
		if !live {
			continue
		}
		var want refusal
		mcm := info.Kind == "incoming(MCM)"
		switch {
		case info.Activation == "DEACTIVATING" && !mcm:
			want = refusal{"R-VC-6", ndis.StatusClosing}
		case info.Activation != "INACTIVE" && mcm:
			want = refusal{"R-VC-7", ndis.StatusNotAccepted}
		case info.Activation != "INACTIVE",
			info.Call != "IDLE" && info.Call != "CLOSED",
			len(info.Pending) > 0, info.SendsOut > 0, info.RecvsOut > 0:
			want = refusal{"R-VC-6", ndis.StatusNotAccepted}
		default:
			continue // the creator may delete it
		}
		if v.incoming {
			cases = append(cases, misuseCase{fmt.Sprintf("%s deletes its %v (%s/%s)", m.cmName, v, info.Activation, info.Call), want, func() ndis.Status { return m.cmDelete(h) }})
		} else {
			b := v.owner.c.Binding()
			cases = append(cases, misuseCase{fmt.Sprintf("%s deletes its %v (%s/%s)", v.owner.name, v, info.Activation, info.Call), want, func() ndis.Status { return b.CoDeleteVc(h) }})
		}
	}
	return cases
}

func (m *machine) misuseClose() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		if !live {
			continue
		}
		h, b := v.cv.H, v.owner.c.Binding()
		var want refusal
		switch {
		case v.incoming && (info.Call == "IDLE" || info.Call == "CLOSED"):
			want = refusal{"R-CLOSE-11", ndis.StatusFailure}
		case info.Call == "OUT_SETUP":
			want = refusal{"R-CALL-5", ndis.StatusFailure}
		case info.Call == "OFFERED":
			want = refusal{"R-IN-3", ndis.StatusFailure}
		case info.Call == "IDLE" || info.Call == "CLOSED" || info.Call == "CLOSING":
			want = refusal{"R-CLOSE-3", ndis.StatusFailure}
		}
		if want.rule != "" {
			cases = append(cases, misuseCase{fmt.Sprintf("%s closes %v in %s", v.owner.name, v, info.Call), want,
				func() ndis.Status { return b.ClCloseCall(h, nil, nil) }})
			continue
		}
		if info.Call != "CONNECTED" || v.incoming {
			continue
		}
		// A connected call closed with the wrong party arguments.
		var liveParties []*ndis.Party
		adding := false
		states := map[string]string{}
		for _, p := range info.Parties {
			states[p.Handle] = p.State
			adding = adding || p.State == "ADDING"
		}
		for _, p := range m.parties {
			if p.root == v && p.cp.H != nil {
				if st := states[p.cp.H.String()]; st == "CONNECTED" || st == "DROP_INDICATED" {
					liveParties = append(liveParties, p.cp.H)
				}
			}
		}
		switch {
		case !info.Multipoint:
			for _, p := range m.parties {
				if p.cp.H != nil {
					ph := p.cp.H
					cases = append(cases, misuseCase{fmt.Sprintf("%s closes point-to-point %v with party %v", v.owner.name, v, ph),
						refusal{"R-CLOSE-5", ndis.StatusFailure}, func() ndis.Status { return b.ClCloseCall(h, ph, nil) }})
					break
				}
			}
		case len(liveParties) >= 2 || adding && len(liveParties) >= 1:
			ph := liveParties[0]
			cases = append(cases, misuseCase{fmt.Sprintf("%s closes %v with %d parties left", v.owner.name, v, len(liveParties)),
				refusal{"R-CLOSE-4", ndis.StatusFailure}, func() ndis.Status { return b.ClCloseCall(h, ph, nil) }})
		default:
			cases = append(cases, misuseCase{fmt.Sprintf("%s closes multipoint %v without a party", v.owner.name, v),
				refusal{"R-CLOSE-5", ndis.StatusFailure}, func() ndis.Status { return b.ClCloseCall(h, nil, nil) }})
		}
	}
	return cases
}

// sendRefusal is the data-path guard of spec §5.1.c for a client VC.
func sendRefusal(info ndis.VcInfo) (refusal, bool) {
	switch {
	case info.Closing:
		return refusal{"R-CLOSE-2", ndis.StatusClosing}, true
	case info.Call == "CLOSE_INDICATED":
		return refusal{"R-CLOSE-15", ndis.StatusClosing}, true
	case info.Call == "OUT_SETUP":
		return refusal{"R-CALL-6", ndis.StatusFailure}, true
	case info.Call == "OFFERED" || info.Call == "ACCEPTED":
		return refusal{"R-IN-8", ndis.StatusFailure}, true
	case info.Call != "CONNECTED":
		return refusal{"R-ACT-1", ndis.StatusFailure}, true
	case info.Activation != "ACTIVE" && info.Activation != "REACTIVATING":
		return refusal{"R-ACT-1", ndis.StatusVcNotActivated}, true
	}
	return refusal{}, false
}

func (m *machine) misuseSend() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		h := v.cv.H
		for _, c := range m.clients {
			b := c.c.Binding()
			var want refusal
			switch {
			case !live:
				want = refusal{"R-VC-9", ndis.StatusFailure}
			case c != v.owner:
				want = refusal{"R-GEN-8", ndis.StatusFailure}
			default:
				w, bad := sendRefusal(info)
				if !bad {
					continue
				}
				want = w
				cases = append(cases, misuseCase{fmt.Sprintf("%s sends on %v (%s/%s closing=%v)", c.name, v, info.Activation, info.Call, info.Closing), want,
					func() ndis.Status {
						nbl := &ndis.NetBufferList{Data: []byte("misuse")}
						b.CoSendNetBufferLists(h, nbl, 0)
						v.sendWant = append(v.sendWant, want.st) // the client was told
						return nbl.Status
					}})
				continue
			}
			cases = append(cases, misuseCase{fmt.Sprintf("%s sends on %v (live=%v)", c.name, v, live), want,
				func() ndis.Status {
					nbl := &ndis.NetBufferList{Data: []byte("misuse")}
					b.CoSendNetBufferLists(h, nbl, 0)
					return nbl.Status
				}})
		}
	}
	return cases
}

func (m *machine) misuseDeadHandle() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	dead := refusal{"R-VC-9", ndis.StatusFailure}
	for _, v := range m.vcs {
		if _, live := vcs[v.h]; live {
			continue
		}
		h, b := v.cv.H, v.owner.c.Binding()
		cases = append(cases,
			misuseCase{fmt.Sprintf("MakeCall on dead %v", v), dead, func() ndis.Status {
				_, st := b.ClMakeCall(h, rapidParams(rapidServices[0], 64_000), nil)
				return st
			}},
			misuseCase{fmt.Sprintf("CloseCall on dead %v", v), dead, func() ndis.Status { return b.ClCloseCall(h, nil, nil) }},
			misuseCase{fmt.Sprintf("ModifyCallQoS on dead %v", v), dead, func() ndis.Status { return b.ClModifyCallQoS(h, rapidParams("qos", 64_000)) }},
			misuseCase{fmt.Sprintf("AddParty on dead %v", v), dead, func() ndis.Status {
				_, st := b.ClAddParty(h, "party", rapidParams(rapidServices[0], 64_000))
				return st
			}},
			misuseCase{fmt.Sprintf("DeleteVc of dead %v", v), dead, func() ndis.Status { return b.CoDeleteVc(h) }},
			misuseCase{fmt.Sprintf("%s IncomingCloseCall on dead %v", m.cmName, v), dead, func() ndis.Status { return m.cmIncomingClose(ndis.StatusFailure, h) }},
			misuseCase{fmt.Sprintf("CoGetTapiCallId of dead %v", v), refusal{"R-VC-9", ndis.StatusInvalidData}, func() ndis.Status {
				_, st := b.CoGetTapiCallId(h)
				return st
			}},
		)
	}
	for _, p := range m.parties {
		if p.live || p.cp.H == nil {
			continue
		}
		info, live := vcs[p.root.h]
		state := "DEAD"
		if live {
			for _, pi := range info.Parties {
				if pi.Handle == p.cp.H.String() {
					state = pi.State
				}
			}
		}
		var want refusal
		switch state {
		case "DEAD", "DROPPING", "CLOSING":
			want = refusal{"R-PTY-9", ndis.StatusFailure}
		case "ADDING":
			want = refusal{"R-PTY-7", ndis.StatusFailure}
		default:
			continue
		}
		ph, b := p.cp.H, p.root.owner.c.Binding()
		cases = append(cases, misuseCase{fmt.Sprintf("DropParty of %s party %v", state, ph), want, func() ndis.Status { return b.ClDropParty(ph, nil) }})
	}
	return cases
}

func (m *machine) cmIncomingClose(st ndis.Status, vc *ndis.Vc) ndis.Status {
	if m.split {
		return m.n.CM.Binding().CmDispatchIncomingCloseCall(st, vc, nil)
	}
	return m.n.MCM.Adapter().MCmDispatchIncomingCloseCall(st, vc, nil)
}

func (m *machine) misuseCallManager() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	makeComplete := func(st ndis.Status, vc *ndis.Vc) ndis.Status {
		if m.split {
			return m.n.CM.Binding().CmMakeCallComplete(st, vc, nil, nil, nil)
		}
		return m.n.MCM.Adapter().MCmMakeCallComplete(st, vc, nil, nil, nil)
	}
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		h := v.cv.H
		cases = append(cases, misuseCase{fmt.Sprintf("%s completes MakeCall on %v with PENDING", m.cmName, v),
			refusal{"R-GEN-1", ndis.StatusFailure}, func() ndis.Status { return makeComplete(ndis.StatusPending, h) }})
		if !live {
			cases = append(cases, misuseCase{fmt.Sprintf("%s completes MakeCall on dead %v", m.cmName, v),
				refusal{"R-VC-9", ndis.StatusFailure}, func() ndis.Status { return makeComplete(ndis.StatusSuccess, h) }})
			continue
		}
		// A client calling the call manager's functions (R-GEN-9).
		c := v.owner.c.Binding()
		cases = append(cases, misuseCase{fmt.Sprintf("%s completes MakeCall on %v as if it were the call manager", v.owner.name, v),
			refusal{"R-GEN-9", ndis.StatusFailure}, func() ndis.Status { return c.CmMakeCallComplete(ndis.StatusSuccess, h, nil, nil, nil) }})
		if !slices.Contains(info.Pending, "MakeCall") {
			cases = append(cases, misuseCase{fmt.Sprintf("%s completes a MakeCall never pended on %v", m.cmName, v),
				refusal{"R-GEN-2", ndis.StatusFailure}, func() ndis.Status { return makeComplete(ndis.StatusSuccess, h) }})
		}
		switch info.Call {
		case "OFFERED", "ACCEPTED", "CONNECTED":
			cases = append(cases, misuseCase{fmt.Sprintf("%s indicates a close with PENDING on %v", m.cmName, v),
				refusal{"R-CLOSE-19", ndis.StatusFailure}, func() ndis.Status { return m.cmIncomingClose(ndis.StatusPending, h) }})
		case "CLOSING":
			// A close indication crossing the client's own close is a clear
			// collision, not misuse: NDIS_STATUS_CLOSING, no violation
			// (TestRule_R_CLOSE_20_ClearCollisionIsNotAViolation).
		default:
			cases = append(cases, misuseCase{fmt.Sprintf("%s indicates a close on %v in %s", m.cmName, v, info.Call),
				refusal{"R-CLOSE-20", ndis.StatusFailure}, func() ndis.Status { return m.cmIncomingClose(ndis.StatusFailure, h) }})
		}
		if m.split {
			b := m.n.CM.Binding()
			cases = append(cases, misuseCase{fmt.Sprintf("cm activates %v with no parameters", v),
				refusal{"R-ACT-13", ndis.StatusInvalidData}, func() ndis.Status { return b.CmActivateVc(h, nil) }})
			if info.Activation != "ACTIVE" {
				cases = append(cases, misuseCase{fmt.Sprintf("cm deactivates %s %v", info.Activation, v),
					refusal{"R-ACT-10", ndis.StatusFailure}, func() ndis.Status { return b.CmDeactivateVc(h) }})
			}
		} else {
			a := m.n.MCM.Adapter()
			cases = append(cases, misuseCase{fmt.Sprintf("mcm activates %v with no parameters", v),
				refusal{"R-ACT-13", ndis.StatusInvalidData}, func() ndis.Status { return a.MCmActivateVc(h, nil) }})
			if info.Activation == "INACTIVE" {
				cases = append(cases, misuseCase{fmt.Sprintf("mcm deactivates inactive %v", v),
					refusal{"R-ACT-11", ndis.StatusNotAccepted}, func() ndis.Status { return a.MCmDeactivateVc(h) }})
			}
		}
	}
	// Incoming drop-party indications the contract forbids.
	for _, p := range m.parties {
		if p.cp.H == nil {
			continue
		}
		info, live := vcs[p.root.h]
		ph := p.cp.H
		var want refusal
		switch {
		case !live:
			want = refusal{"R-VC-9", ndis.StatusFailure}
		default:
			state, others := "DEAD", 0
			for _, pi := range info.Parties {
				switch {
				case pi.Handle == ph.String():
					state = pi.State
				case pi.State == "CONNECTED" || pi.State == "DROP_INDICATED":
					others++
				}
			}
			switch {
			case state == "DROPPING" || state == "CLOSING":
				// Crossing the client's own drop or close: not misuse
				// (TestRule_R_PTY_15_CrossingDropIsNotAViolation).
				continue
			case state != "CONNECTED":
				want = refusal{"R-PTY-15", ndis.StatusFailure}
			case others == 0:
				want = refusal{"R-CLOSE-18", ndis.StatusFailure}
			default:
				continue
			}
		}
		cases = append(cases, misuseCase{fmt.Sprintf("%s indicates a drop of party %v", m.cmName, ph), want, func() ndis.Status {
			if m.split {
				return m.n.CM.Binding().CmDispatchIncomingDropParty(ndis.StatusSuccess, ph, nil)
			}
			return m.n.MCM.Adapter().MCmDispatchIncomingDropParty(ndis.StatusSuccess, ph, nil)
		}})
	}
	return cases
}

func (m *machine) misuseMiniport() []misuseCase {
	vcs := m.snapVcs()
	a := m.n.Adapter
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		h := v.cv.H
		cases = append(cases, misuseCase{fmt.Sprintf("miniport completes a send never made on %v", v),
			refusal{"R-DATA-5", ndis.StatusFailure}, func() ndis.Status {
				return a.MCoSendNetBufferListsComplete(h, &ndis.NetBufferList{Data: []byte("never sent")}, 0)
			}})
		switch {
		case !live:
			cases = append(cases, misuseCase{fmt.Sprintf("miniport indicates a receive on dead %v", v),
				refusal{"R-VC-9", ndis.StatusFailure}, func() ndis.Status {
					return a.MCoIndicateReceiveNetBufferLists(h, &ndis.NetBufferList{Data: []byte("late")}, 1, ndis.ReceiveFlagsResources)
				}})
		case info.Activation != "ACTIVE" && info.Activation != "REACTIVATING" && info.Activation != "DEACTIVATING":
			// While a deactivation is pending a receive is one in
			// progress, not misuse (R-ACT-7: none after it completes).
			cases = append(cases, misuseCase{fmt.Sprintf("miniport indicates a receive on %s %v", info.Activation, v),
				refusal{"R-ACT-7", ndis.StatusVcNotActivated}, func() ndis.Status {
					return a.MCoIndicateReceiveNetBufferLists(h, &ndis.NetBufferList{Data: []byte("early")}, 1, ndis.ReceiveFlagsResources)
				}})
		}
		cases = append(cases, misuseCase{fmt.Sprintf("miniport completes an activation of %v with PENDING", v),
			refusal{"R-GEN-1", ndis.StatusFailure}, func() ndis.Status { return a.MCoActivateVcComplete(ndis.StatusPending, h, nil) }})
		if !m.split {
			cases = append(cases, misuseCase{fmt.Sprintf("mcm completes an activation of %v", v),
				refusal{"R-REG-5", ndis.StatusFailure}, func() ndis.Status { return a.MCoActivateVcComplete(ndis.StatusSuccess, h, nil) }})
		} else if live && !slices.Contains(info.Pending, "ActivateVc") {
			cases = append(cases, misuseCase{fmt.Sprintf("miniport completes an activation of %v never pended", v),
				refusal{"R-GEN-2", ndis.StatusFailure}, func() ndis.Status { return a.MCoActivateVcComplete(ndis.StatusSuccess, h, nil) }})
		}
		if m.split && live && !slices.Contains(info.Pending, "DeactivateVc") {
			cases = append(cases, misuseCase{fmt.Sprintf("miniport completes a deactivation of %v never pended", v),
				refusal{"R-GEN-2", ndis.StatusFailure}, func() ndis.Status { return a.MCoDeactivateVcComplete(ndis.StatusSuccess, h) }})
		}
	}
	return cases
}

func (m *machine) misuseCallOrQoS() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		if !live {
			continue
		}
		h := v.cv.H
		for _, c := range m.clients {
			b := c.c.Binding()
			// MakeCall.
			var want refusal
			switch {
			case c != v.owner || v.incoming:
				want = refusal{"R-CALL-1", ndis.StatusFailure}
			case info.Call == "IDLE":
				// Only a nil parameter buffer is misuse on an idle VC.
				cases = append(cases, misuseCase{fmt.Sprintf("%s MakeCall on %v without parameters", c.name, v),
					refusal{"R-CALL-2", ndis.StatusFailure}, func() ndis.Status {
						_, st := b.ClMakeCall(h, nil, nil)
						return st
					}})
			case info.Call == "CLOSED" && info.LeftActive:
				want = refusal{"R-CLOSE-8", ndis.StatusFailure}
			case info.Call == "CLOSED" && info.CloseStatus != "" && info.CloseStatus != ndis.StatusSuccess.String():
				want = refusal{"R-CLOSE-16", ndis.StatusFailure}
			case info.Call == "CLOSED":
			case info.Call == "CLOSING":
				want = refusal{"R-CLOSE-3", ndis.StatusClosing}
			default:
				want = refusal{"R-CALL-1", ndis.StatusFailure}
			}
			if want.rule != "" {
				cases = append(cases, misuseCase{fmt.Sprintf("%s MakeCall on %v (%s/%s)", c.name, v, info.Activation, info.Call), want,
					func() ndis.Status {
						_, st := b.ClMakeCall(h, rapidParams(rapidServices[0], 64_000), nil)
						return st
					}})
			}
			// ModifyCallQoS.
			for _, nilParams := range []bool{false, true} {
				var want refusal
				switch {
				case c != v.owner:
					want = refusal{"R-GEN-8", ndis.StatusFailure}
				case v.incoming && (info.Call == "IDLE" || info.Call == "CLOSED"):
					want = refusal{"R-CLOSE-11", ndis.StatusFailure}
				case nilParams:
					want = refusal{"R-QOS-3", ndis.StatusInvalidData}
				case slices.Contains(info.Pending, "ModifyCallQoS"):
					want = refusal{"R-QOS-5", ndis.StatusFailure}
				case info.Call == "CONNECTED" && !info.Closing:
					continue // would proceed
				case info.Call == "OFFERED" && slices.Contains(info.Pending, "IncomingCall"):
					continue // negotiation before answering (R-IN-9)
				default:
					want = refusal{"R-CALL-6", ndis.StatusFailure}
				}
				params := rapidParams("qos", 64_000)
				if nilParams {
					params = nil
				}
				cases = append(cases, misuseCase{fmt.Sprintf("%s ModifyCallQoS on %v (%s, nil params=%v)", c.name, v, info.Call, nilParams), want,
					func() ndis.Status { return b.ClModifyCallQoS(h, params) }})
			}
		}
	}
	return cases
}

func (m *machine) misuseParty() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		if !live {
			continue
		}
		h, b := v.cv.H, v.owner.c.Binding()
		for _, nilCtx := range []bool{false, true} {
			var want refusal
			switch {
			case v.incoming && (info.Call == "IDLE" || info.Call == "CLOSED"):
				want = refusal{"R-CLOSE-11", ndis.StatusFailure}
			case !info.Multipoint:
				want = refusal{"R-PTY-1", ndis.StatusFailure}
			case info.Call != "CONNECTED":
				want = refusal{"R-PTY-7", ndis.StatusFailure}
			case nilCtx:
				want = refusal{"R-PTY-2", ndis.StatusFailure}
			default:
				continue // a proper AddParty
			}
			var ctx any = "party"
			if nilCtx {
				ctx = nil
			}
			cases = append(cases, misuseCase{fmt.Sprintf("%s AddParty on %v (%s, multipoint=%v, nil ctx=%v)", v.owner.name, v, info.Call, info.Multipoint, nilCtx), want,
				func() ndis.Status {
					_, st := b.ClAddParty(h, ctx, rapidParams(rapidServices[0], 64_000))
					return st
				}})
		}
		// Dropping the last party (R-PTY-10).
		if info.Call != "CONNECTED" || !info.Multipoint {
			continue
		}
		var last []string
		for _, pi := range info.Parties {
			if pi.State == "CONNECTED" || pi.State == "DROP_INDICATED" {
				last = append(last, pi.Handle)
			}
		}
		if len(last) != 1 {
			continue
		}
		for _, p := range m.parties {
			if p.root == v && p.cp.H != nil && p.cp.H.String() == last[0] {
				ph := p.cp.H
				cases = append(cases, misuseCase{fmt.Sprintf("%s drops the last party %v of %v", v.owner.name, ph, v),
					refusal{"R-PTY-10", ndis.StatusFailure}, func() ndis.Status { return b.ClDropParty(ph, nil) }})
			}
		}
	}
	return cases
}

func (m *machine) misuseIncomingCall() []misuseCase {
	vcs := m.snapVcs()
	var cases []misuseCase
	for _, v := range m.vcs {
		info, live := vcs[v.h]
		if !live || !v.incoming {
			continue
		}
		h, b := v.cv.H, v.owner.c.Binding()
		cases = append(cases, misuseCase{fmt.Sprintf("%s answers %v with PENDING", v.owner.name, v),
			refusal{"R-IN-3", ndis.StatusFailure}, func() ndis.Status { return b.ClIncomingCallComplete(ndis.StatusPending, h, nil) }})
		if !slices.Contains(info.Pending, "IncomingCall") {
			cases = append(cases, misuseCase{fmt.Sprintf("%s answers %v which was not offered", v.owner.name, v),
				refusal{"R-GEN-2", ndis.StatusFailure}, func() ndis.Status { return b.ClIncomingCallComplete(ndis.StatusSuccess, h, nil) }})
		}
	}
	return cases
}

// ---------------------------------------------------------------------------
// Invariants.

func (m *machine) eachResult(f func(what string, r *memdrv.Result)) {
	for _, v := range m.vcs {
		f(v.h+" Make", &v.cv.Make)
		f(v.h+" Close", &v.cv.Close)
		f(v.h+" QoS", &v.cv.QoS)
		f(v.h+" Answer", &v.cv.Answer)
		for _, p := range v.cv.Parties {
			f(fmt.Sprintf("%s party %v Add", v.h, p.H), &p.Add)
			f(fmt.Sprintf("%s party %v Drop", v.h, p.H), &p.Drop)
		}
	}
	for _, s := range m.saps {
		f("SAP "+s.svc+" Register", &s.cs.Register)
		f("SAP "+s.svc+" Deregister", &s.cs.Deregister)
	}
	for _, c := range m.clients {
		f(c.name+" AF Open", &c.af.Open)
		f(c.name+" AF Close", &c.af.Close)
		f(c.name+" AF Notify", &c.af.Notify)
	}
}

var (
	createFns = map[string]bool{"NdisCoCreateVc": true, "NdisMCmCreateVc": true}
	deleteFns = map[string]bool{"NdisCoDeleteVc": true, "NdisMCmDeleteVc": true}
)

func (m *machine) check(t *rapid.T) {
	quiet := m.quiet()
	if quiet {
		clear(m.locks)
		clear(m.sending)
	}
	s := m.n.M.Snapshot()
	vcs := map[string]ndis.VcInfo{}
	want := ndis.LiveCounts{Vcs: len(s.Vcs), Saps: len(s.Saps)}
	states := map[string]int{}
	for _, v := range s.Vcs {
		vcs[v.Handle] = v
		want.Parties += len(v.Parties)
		states[v.Call]++
	}
	// Live counts what Snapshot lists (its party count is kept, not walked).
	if got := m.n.M.Live(); got != want {
		t.Fatalf("Live() = %+v, the snapshot holds %+v\n%s", got, want, m.n.Dump())
	}
	// CallStates counts the snapshot's VCs by call state, from counters
	// kept as the calls move.
	if got := m.n.M.CallStates(); !maps.Equal(got, states) {
		t.Fatalf("CallStates() = %v, the snapshot's VCs are %v\n%s", got, states, m.n.Dump())
	}
	if got := m.n.M.Saps(); !reflect.DeepEqual(got, s.Saps) {
		t.Fatalf("Saps() = %v, the snapshot's are %v", got, s.Saps)
	}
	for _, v := range s.Vcs {
		if client, ok := m.n.M.VcClient(v.Handle); !ok || client != v.Client {
			t.Fatalf("VcClient(%s) = %q, %v; the snapshot's client is %q", v.Handle, client, ok, v.Client)
		}
	}

	// (1) Only creators delete, and VCs appear only by creation.
	creator := map[string]string{}
	for h, c := range m.prev {
		creator[h] = c
	}
	deleted := map[string]bool{}
	for _, e := range m.n.Events() {
		if e.Kind != ndis.EventReturn || e.Status != ndis.StatusSuccess {
			continue
		}
		switch {
		case createFns[e.Func]:
			creator[e.Object] = e.Driver
		case deleteFns[e.Func]:
			if c, ok := creator[e.Object]; !ok || c != e.Driver {
				t.Fatalf("%s deleted %s, created by %q", e.Driver, e.Object, c)
			}
			deleted[e.Object] = true
		}
	}
	for h, c := range m.prev {
		if _, ok := vcs[h]; !ok && !deleted[h] {
			t.Fatalf("%s (created by %s) vanished without a delete by its creator\n%s", h, c, m.n.Dump())
		}
	}
	for h, v := range vcs {
		if creator[h] != v.Creator {
			t.Fatalf("%s appeared with creator %s, no matching create (%q)", h, v.Creator, creator[h])
		}
	}
	for _, v := range m.vcs {
		info, ok := vcs[v.h]
		if !v.incoming && ok == v.gone {
			t.Fatalf("%v: in snapshot=%v but model deleted=%v\n%s", v, ok, v.gone, m.n.Dump())
		}
		want := v.owner.name
		if v.incoming {
			want = m.cmName
		}
		if ok && (info.Creator != want || info.Client != v.owner.name) {
			t.Fatalf("%v: creator %s client %s, want %s/%s", v, info.Creator, info.Client, want, v.owner.name)
		}
	}

	// (2) Every completion at most once; none for a request that did not pend.
	m.eachResult(func(what string, r *memdrv.Result) {
		if r.Completions > 1 || r.Completions > 0 && r.Returned != ndis.StatusPending {
			t.Fatalf("%s: %v", what, r)
		}
	})

	// (3) Party counts: a connected multipoint VC keeps at least one party.
	for _, v := range s.Vcs {
		if !v.Multipoint || v.Call != "CONNECTED" {
			continue
		}
		live := 0
		for _, p := range v.Parties {
			if p.State == "CONNECTED" || p.State == "DROP_INDICATED" || p.State == "DROPPING" {
				live++
			}
		}
		if live == 0 {
			t.Fatalf("connected multipoint %s has no live party: %+v", v.Handle, v.Parties)
		}
	}

	// No VC is offered to a client except by a MakeCall or AddParty.
	for _, c := range m.clients {
		if n := len(c.c.Incoming()); n != c.seenIn {
			t.Fatalf("%s got %d unexplained incoming VCs\n%s", c.name, n-c.seenIn, m.n.Dump())
		}
	}
	if got := len(m.n.Seen()); got != m.expected {
		t.Fatalf("%d violations, the model caused %d: %v", got, m.expected, m.n.Seen())
	}

	rapidCoverage[fmt.Sprintf("check quiet=%v", quiet)]++
	if quiet {
		m.checkQuiescent(t, s, vcs)
	}
	m.prev = map[string]string{}
	for _, v := range s.Vcs {
		m.prev[v.Handle] = v.Creator
	}
	m.n.Mark()
}

func (m *machine) checkQuiescent(t *rapid.T, s ndis.Snapshot, vcs map[string]ndis.VcInfo) {
	fail := func(format string, args ...any) {
		t.Fatalf("at quiescence: "+format+"\n%s", append(args, m.n.Dump())...)
	}
	// (2) Nothing pending; every request finished exactly once, as predicted.
	for _, af := range s.Afs {
		if len(af.Pending) > 0 {
			fail("%s pending %v", af.Handle, af.Pending)
		}
	}
	for _, sp := range s.Saps {
		if len(sp.Pending) > 0 {
			fail("%s pending %v", sp.Handle, sp.Pending)
		}
	}
	for _, v := range s.Vcs {
		if len(v.Pending) > 0 || v.SendsOut != 0 || v.RecvsOut != 0 {
			fail("%s pending %v, sends %d, receives %d outstanding", v.Handle, v.Pending, v.SendsOut, v.RecvsOut)
		}
		for _, p := range v.Parties {
			if len(p.Pending) > 0 {
				fail("%s pending %v", p.Handle, p.Pending)
			}
		}
	}
	for _, w := range m.want {
		if w.anyStatus {
			if !w.r.ExactlyOnce() {
				fail("%s (raced with a link loss): %v", w.what, w.r)
			}
			continue
		}
		if w.alt != 0 && w.r.Status == w.alt && w.r.ExactlyOnce() {
			t.Logf("%s: withdrawn (%v): the SAP was deregistered before the offer", w.what, w.alt)
			rapidCoverage["offer withdrawn by a racing deregistration"]++
			w.withdrawn()
			continue
		}
		if !w.r.ExactlyOnce() || w.r.Status != w.status || w.sync && w.r.Returned != w.status {
			fail("%s: %v, want final %v (synchronous=%v)", w.what, w.r, w.status, w.sync)
		}
	}
	m.want = m.want[:0]
	m.resolveUnsure(fail, vcs)
	m.eachResult(func(what string, r *memdrv.Result) {
		if *r != (memdrv.Result{}) && !r.ExactlyOnce() {
			fail("%s: %v", what, r)
		}
	})

	// (5) The snapshot agrees with the model.
	for _, c := range m.clients {
		var want, got []string
		for _, v := range m.vcs {
			if v.owner == c && !v.gone {
				want = append(want, v.h)
			}
		}
		for _, v := range s.Vcs {
			if v.Client == c.name {
				got = append(got, v.Handle)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			fail("%s's VCs: %v, model %v", c.name, got, want)
		}
	}
	for _, v := range m.vcs {
		if v.cv.Deleted != v.gone {
			fail("%v: client sees deleted=%v, model %v", v, v.cv.Deleted, v.gone)
		}
		m.checkCounters(fail, v)
		if v.gone {
			continue
		}
		info := vcs[v.h]
		act := "INACTIVE"
		if v.call == cConnected {
			act = "ACTIVE"
		}
		kind := "outgoing"
		if v.incoming {
			kind = map[bool]string{true: "incoming", false: "incoming(MCM)"}[m.split]
		}
		if info.Call != v.call.String() || info.Activation != act || info.Lifecycle != "CREATED" || info.Kind != kind {
			fail("%v: snapshot %s %s/%s/%s", v, info.Kind, info.Lifecycle, info.Activation, info.Call)
		}
		if info.LeftActive { // our drivers deactivate before completing a close (R-CLOSE-8)
			fail("%v: the last close left the VC active", v)
		}
		closeStatus := ""
		if v.closeSeen && !v.incoming {
			closeStatus = v.closeStatus.String()
		}
		if !v.incoming && info.CloseStatus != closeStatus {
			fail("%v: close status %q, model %q", v, info.CloseStatus, closeStatus)
		}
		var parties []string
		for _, p := range info.Parties {
			if p.State != "CONNECTED" {
				fail("%v: party %s is %s", v, p.Handle, p.State)
			}
			parties = append(parties, p.Handle)
		}
		var want []string
		for _, p := range v.liveParties() {
			want = append(want, p.cp.H.String())
		}
		sort.Strings(parties)
		sort.Strings(want)
		if !slices.Equal(parties, want) {
			fail("%v: parties %v, model %v", v, parties, want)
		}
		if v.call == cConnected {
			if info.Multipoint != (v.multipoint && !v.incoming) {
				fail("%v: multipoint %v", v, info.Multipoint)
			}
			if p := info.Params; p == nil || p.CallMgrParameters == nil || p.CallMgrParameters.Transmit.TokenRate != v.rate {
				fail("%v: activation parameters %s, model rate %d", v, paramString(p), v.rate)
			}
		} else if info.Params != nil {
			fail("%v: %s VC keeps activation parameters %+v (R-ACT-8)", v, info.Call, info.Params)
		}
	}
	var wantSaps, gotSaps []string
	for _, sp := range m.saps {
		if sp.live {
			wantSaps = append(wantSaps, fmt.Sprintf("%v %s REGISTERED %s", sp.cs.H, sp.owner.name, sp.svc))
		}
	}
	for _, sp := range s.Saps {
		gotSaps = append(gotSaps, fmt.Sprintf("%s %s %s %s", sp.Handle, sp.Client, sp.State, sapName(&sp.Sap)))
	}
	sort.Strings(wantSaps)
	sort.Strings(gotSaps)
	if !slices.Equal(wantSaps, gotSaps) {
		fail("SAPs %v, model %v", gotSaps, wantSaps)
	}

	// (6) The data path: every send completed once with its status, every
	// received packet in order, nothing left with the miniport.
	for _, v := range m.vcs {
		got := append([]ndis.Status(nil), v.cv.SendStatus...)
		want := append([]ndis.Status(nil), v.sendWant...)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			fail("%v: send completions %v, model %v", v, got, want)
		}
		var rx []string
		for _, d := range v.cv.RxData() {
			rx = append(rx, string(d))
		}
		if !slices.Equal(rx, v.rxWant) {
			fail("%v: received %q, model %q", v, rx, v.rxWant)
		}
	}
	out := 0
	if m.split {
		out = m.n.Miniport.OutstandingReceives()
	} else {
		out = m.n.MCM.OutstandingReceives()
	}
	if out != 0 {
		fail("%d receive lists not returned to the miniport", out)
	}
}

func paramString(p *ndis.CallParameters) string {
	if p == nil || p.CallMgrParameters == nil {
		return fmt.Sprintf("%+v", p)
	}
	return fmt.Sprintf("{Flags:%#x TokenRate tx=%d rx=%d}", p.Flags, p.CallMgrParameters.Transmit.TokenRate, p.CallMgrParameters.Receive.TokenRate)
}

func (m *machine) checkCounters(fail func(string, ...any), v *mVc) {
	cv := v.cv
	if cv.CloseIndicated != v.closeInd {
		fail("%v: %d incoming closes, model %d", v, cv.CloseIndicated, v.closeInd)
	}
	if cv.QoSChanges != v.qosChanges {
		fail("%v: %d incoming QoS changes, model %d", v, cv.QoSChanges, v.qosChanges)
	}
	if v.incoming && (cv.Offered != v.offered || cv.Connected != v.connected) {
		fail("%v: offered %d connected %d, model %d/%d", v, cv.Offered, cv.Connected, v.offered, v.connected)
	}
	for _, p := range m.parties {
		if p.root == v && p.cp.DropIndicated != p.dropInd {
			fail("party %v of %v: %d incoming drops, model %d", p.cp.H, v, p.cp.DropIndicated, p.dropInd)
		}
	}
}

// finish drains the loop, checks the quiescent state and tears everything
// down through the call manager's notify-close cascade.
func (m *machine) finish(t *rapid.T) {
	m.n.Run()
	m.check(t)
	t.Logf("Teardown")
	m.n.Teardown()
	if t.Failed() {
		return
	}
	m.eachResult(func(what string, r *memdrv.Result) {
		if *r != (memdrv.Result{}) && !r.ExactlyOnce() {
			t.Fatalf("after teardown: %s: %v", what, r)
		}
	})
	for _, c := range m.clients {
		if c.af.Close.Status != ndis.StatusSuccess || c.af.Notify.Status != ndis.StatusSuccess {
			t.Fatalf("%s: AF close %v, notify %v", c.name, c.af.Close, c.af.Notify)
		}
	}
}

// ---------------------------------------------------------------------------
// Regression tests: the minimal sequences TestRapidStateMachine found. Each
// runs in strict mode (any violation fails) and ends with a full teardown.

func rapidCall(t *testing.T, c *memdrv.Client, af *memdrv.ClientAf, svc string, rate uint32, mp bool) (*memdrv.ClientVc, *memdrv.ClientParty) {
	t.Helper()
	v, st := c.CreateVc(af)
	if st != ndis.StatusSuccess {
		t.Fatalf("CreateVc: %v", st)
	}
	p, _ := c.MakeCall(v, rapidParams(svc, rate), mp)
	return v, p
}

func wantCall(t *testing.T, n *ndistest.Net, v *ndis.Vc, call, act string) ndis.VcInfo {
	t.Helper()
	for _, vi := range n.M.Snapshot().Vcs {
		if vi.Handle == v.String() {
			if vi.Call != call || vi.Activation != act {
				t.Fatalf("%s is %s/%s, want %s/%s\n%s", vi.Handle, vi.Activation, vi.Call, act, call, n.Dump())
			}
			return vi
		}
	}
	t.Fatalf("%v not in the snapshot\n%s", v, n.Dump())
	return ndis.VcInfo{}
}

// A failed MakeCall left the call manager believing a call existed: a later
// link loss indicated a close on the idle VC (R-CLOSE-20).
func TestRapidRegressionLinkDownAfterFailedSetup(t *testing.T) {
	n := ndistest.New(t, ndistest.MCM, memdrv.Immediate)
	v, _ := rapidCall(t, n.Caller, n.Caller.Af(), nowhere, 64_000, false)
	if v.Make.Status != ndis.StatusInvalidSap {
		t.Fatalf("make: %v", v.Make)
	}
	n.MCM.LinkDown(ndis.StatusDestOutOfOrder)
	n.Run()
	wantCall(t, n, v.H, "IDLE", "INACTIVE")
	if v.CloseIndicated != 0 {
		t.Fatalf("close indicated on a VC without a call")
	}
	n.Caller.DeleteVc(v)
	n.Teardown()
}

// The client deleted a closed VC twice during the notify-close teardown:
// once from progress, once from the deferred delete posted by afterClose
// (R-VC-9).
func TestRapidRegressionTeardownWithCallUp(t *testing.T) {
	n := ndistest.New(t, ndistest.MCM, memdrv.Immediate)
	ca, _, _ := n.Ready("svc")
	v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
	n.Run()
	wantCall(t, n, v.H, "CONNECTED", "ACTIVE")
	n.Teardown()
}

// With the call manager completing DropParty inside its handler, the drop
// completion re-entered closeWhenReady and closed the call; the outer frame
// then closed it again (R-CLOSE-3).
func TestRapidRegressionDropCompletionInsideClose(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			n := ndistest.New(t, topo, memdrv.Immediate)
			ca, _, _ := n.Ready("svc")
			if n.MCM != nil {
				n.MCM.SetMode(memdrv.PendEarly)
			} else {
				n.CM.SetMode(memdrv.PendEarly)
			}
			v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, true)
			n.Caller.AddParty(v, rapidParams("svc", 64_000))
			n.Run()
			if topo == ndistest.MCM {
				n.MCM.LinkDown(ndis.StatusDestOutOfOrder)
			} else {
				n.Miniport.IndicateLinkDown()
			}
			n.Run()
			wantCall(t, n, v.H, "CLOSED", "INACTIVE")
			if !v.Close.ExactlyOnce() || v.Close.Status != ndis.StatusSuccess {
				t.Fatalf("close: %v", v.Close)
			}
			n.Caller.DeleteVc(v)
			n.Teardown()
		})
	}
}

// A client holding both the root and the leaves of a multipoint call: its
// teardown re-entered closeWhenReady for the root (through progress, after
// closing a leaf) and dropped the same party twice (R-PTY-9).
func TestRapidRegressionTeardownOwnMultipointLeaves(t *testing.T) {
	n := ndistest.New(t, ndistest.MCM, memdrv.Immediate)
	_, ea, _ := n.Ready("svc")
	v, _ := rapidCall(t, n.Callee, ea, "svc", 64_000, true)
	n.Callee.AddParty(v, rapidParams("svc", 64_000))
	n.Callee.AddParty(v, rapidParams("svc", 64_000))
	n.Run()
	if vi := wantCall(t, n, v.H, "CONNECTED", "ACTIVE"); len(vi.Parties) != 3 {
		t.Fatalf("parties: %+v", vi.Parties)
	}
	n.Teardown()
}

// The mediator kept a pointer to the call manager's activation buffer; after
// a refused re-activation the VC's parameters read as the refused ones
// (R-ACT-4, design.md: a refused QoS change keeps the exact previous
// parameters).
func TestRapidRegressionRefusedReactivationKeepsParameters(t *testing.T) {
	n := ndistest.New(t, ndistest.Split, memdrv.Immediate)
	ca, _, _ := n.Ready("svc")
	v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
	n.Run()
	in := n.Callee.LastIncoming()
	n.Miniport.RejectTokenRate(125_000)
	n.Caller.ModifyQoS(v, rapidParams("svc", 125_000))
	n.Run()
	if v.QoS.Status != ndis.StatusFailure || !v.QoS.ExactlyOnce() {
		t.Fatalf("QoS: %v", v.QoS)
	}
	for _, h := range []*ndis.Vc{v.H, in.H} {
		vi := wantCall(t, n, h, "CONNECTED", "ACTIVE")
		if got := vi.Params.CallMgrParameters.Transmit.TokenRate; got != 64_000 {
			t.Errorf("%s: token rate %d after a refused change, want 64000", vi.Handle, got)
		}
		vi.Params.CallMgrParameters.Transmit.TokenRate = 1 // a snapshot is a copy
	}
	if vi := wantCall(t, n, v.H, "CONNECTED", "ACTIVE"); vi.Params.CallMgrParameters.Transmit.TokenRate != 64_000 {
		t.Errorf("snapshot parameters alias the mediator's")
	}
	n.Caller.CloseCall(v)
	n.Run()
	n.Caller.DeleteVc(v)
	n.Teardown()
}

// The call manager dispatched an offer on a SAP the client had deregistered
// while the VC's activation was pending in the miniport (R-SAP-11).
func TestRapidRegressionDeregisterDuringOffer(t *testing.T) {
	n := ndistest.New(t, ndistest.Split, memdrv.Immediate)
	ca, _, s := n.Ready("svc")
	n.Miniport.SetMode(memdrv.Pend)
	v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
	n.Callee.DeregisterSap(s)
	n.Run()
	if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusInvalidSap {
		t.Fatalf("make: %v", v.Make)
	}
	if in := n.Callee.LastIncoming(); in == nil || in.Offered != 0 || !in.Deleted {
		t.Fatalf("callee VC: %+v", in)
	}
	n.Caller.DeleteVc(v)
	n.Teardown()
}

// On a remote close the client closed at once, with its sends still out
// (R-CLOSE-1); a miniport call manager then deactivated with them in flight
// (R-ACT-7).
func TestRapidRegressionRemoteCloseWaitsForSends(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			n := ndistest.New(t, topo, memdrv.Immediate)
			ca, _, _ := n.Ready("svc")
			if n.MCM != nil {
				n.MCM.SetMode(memdrv.Pend)
			} else {
				n.Miniport.SetMode(memdrv.Pend)
			}
			v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
			n.Run()
			n.Caller.Send(v, []byte("a"), []byte("b"))
			in := n.Callee.LastIncoming()
			n.Callee.CloseCall(in)
			n.Run()
			wantCall(t, n, v.H, "CLOSED", "INACTIVE")
			if !slices.Equal(v.SendStatus, []ndis.Status{ndis.StatusSuccess, ndis.StatusSuccess}) || v.Close.Status != ndis.StatusSuccess {
				t.Fatalf("sends %v close %v", v.SendStatus, v.Close)
			}
			if got := in.RxData(); len(got) != 2 {
				t.Fatalf("received %q", got)
			}
			n.Caller.DeleteVc(v)
			n.Teardown()
		})
	}
}

// The link went down after the call manager had decided a MakeCall
// succeeded but before NDIS had its completion: it indicated a close on the
// call still being set up (R-CLOSE-20), and the call then stayed up.
func TestRapidRegressionLinkDownBeforeMakeCompletes(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			n := ndistest.New(t, topo, memdrv.Immediate)
			ca, _, _ := n.Ready("svc")
			if n.MCM != nil {
				n.MCM.SetMode(memdrv.Pend)
			} else {
				n.CM.SetMode(memdrv.Pend)
			}
			v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
			if n.MCM != nil {
				n.MCM.LinkDown(ndis.StatusDestOutOfOrder)
			} else {
				n.Miniport.IndicateLinkDown()
			}
			n.Run()
			vi := wantCall(t, n, v.H, "CLOSED", "INACTIVE")
			if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusSuccess || v.CloseIndicated != 1 || vi.CloseStatus != ndis.StatusDestOutOfOrder.String() {
				t.Fatalf("make %v, %d close indications, close status %s", v.Make, v.CloseIndicated, vi.CloseStatus)
			}
			n.Caller.DeleteVc(v)
			n.Teardown()
		})
	}
}

// The link went down while an AddParty's offer waited for the callee's
// (pended) answer: the call manager dropped the offer's continuation, the
// AddParty never completed, and the root's close waited for it forever.
func TestRapidRegressionLinkDownUnansweredAddParty(t *testing.T) {
	n := ndistest.New(t, ndistest.MCM, memdrv.Immediate)
	ca, _, _ := n.Ready("svc")
	v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, true)
	n.Run()
	n.Callee.SetMode(memdrv.Pend)
	p, _ := n.Caller.AddParty(v, rapidParams("svc", 64_000))
	n.MCM.LinkDown(ndis.StatusDestOutOfOrder)
	n.Run()
	if !p.Add.ExactlyOnce() || p.Add.Status == ndis.StatusSuccess {
		t.Fatalf("add party: %v", p.Add)
	}
	wantCall(t, n, v.H, "CLOSED", "INACTIVE")
	n.Caller.DeleteVc(v)
	n.Teardown()
}

// The link went down while a QoS change re-activated the far end's VC in the
// miniport: the call manager deactivated it with the activation still
// pending (R-ACT-10).
func TestRapidRegressionLinkDownDuringReactivation(t *testing.T) {
	n := ndistest.New(t, ndistest.Split, memdrv.Immediate)
	ca, _, _ := n.Ready("svc")
	n.Miniport.SetMode(memdrv.Pend)
	v, _ := rapidCall(t, n.Caller, ca, "svc", 64_000, false)
	n.Run()
	n.Caller.ModifyQoS(v, rapidParams("svc", 125_000))
	n.Miniport.IndicateLinkDown()
	n.Run()
	if !v.QoS.ExactlyOnce() {
		t.Fatalf("QoS: %v", v.QoS)
	}
	wantCall(t, n, v.H, "CLOSED", "INACTIVE")
	n.Caller.DeleteVc(v)
	n.Teardown()
}

// sapName is the service a Q.2931 SAP registers (q2931.SapService), or
// its octets if it has another format.
func sapName(s *ndis.CoSap) string {
	if svc, ok := q2931.SapService(s); ok {
		return svc
	}
	return string(s.Sap)
}
