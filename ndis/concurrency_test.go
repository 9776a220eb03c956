package ndis_test

// Concurrency-contract tests (spec §3.0, R-GEN-10, the package doc of
// mediator.go): any goroutine may call any method, no mediator lock is held
// while a handler runs, a completion may arrive on any goroutine, even before
// the requester has seen NDIS_STATUS_PENDING, and every request has exactly
// one outcome: a non-PENDING return, or PENDING and exactly one completion.
//
// The drivers here are purpose-built and asynchronous: a miniport call
// manager (ccMCM) and clients (ccClient) implementing the handler interfaces
// directly. Each driver has a fixed pool of worker goroutines (ccPool) that
// the test starts and joins. A responder answers each request in one of the
// ccMode ways: synchronously, early (the completion function is called
// inside the handler, which then returns PENDING), asynchronously (a worker
// completes, before or after the handler returned), or racing (a worker
// completes while the handler blocks until it has: R-GEN-10 made
// deterministic).
//
// The requester chooses the mode of every request from its own seeded
// math/rand source and passes it to the responder in the request's own data
// (call parameters, close data, SAP type), so the drivers share no random
// source: a shared lock there would add happens-before edges between
// goroutines and could hide a data race in the mediator from -race. For the
// same reason the first test sets no Trace hook (emit then takes the
// mediator's trace lock on every event).
//
// Every top-level identifier here starts with "cc".

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
)

// ccMode is how a responder answers one request.
type ccMode uint8

const (
	ccSync       ccMode = iota // the handler returns the final status
	ccEarly                    // the handler calls the completion function, then returns PENDING
	ccAsync                    // a worker completes; the handler returns PENDING at once
	ccAsyncYield               // a worker completes; the handler yields before returning PENDING
	ccRace                     // a worker completes while the handler waits for it, then returns PENDING
)

var ccAllModes = []ccMode{ccSync, ccEarly, ccAsync, ccAsyncYield, ccRace}

func (m ccMode) String() string {
	if int(m) < 5 {
		return [...]string{"sync", "early", "async", "async+yield", "race"}[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// How a client runs the request with which it answers an indication
// (NdisClCloseCall for ProtocolClIncomingCloseCall, NdisClDropParty for
// ProtocolClIncomingDropParty): inline in the handler or on a worker.
const (
	ccInline byte = iota
	ccOnWorker
)

// ccOp is one request as its requester sees it: what the request returned
// and every completion handler call it got.
type ccOp struct {
	what   string
	ctr    *atomic.Int64 // counts completion deliveries for the strict R-GEN-10 check; nil otherwise
	retSet atomic.Bool
	ret    atomic.Uint32
	ncomp  atomic.Int32
	cst    atomic.Uint32
	early  atomic.Bool // the completion handler ran before the request returned
	retCh  chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (o *ccOp) finish() { o.once.Do(func() { close(o.done) }) }

// returned records what the request returned.
func (o *ccOp) returned(st ndis.Status) {
	o.ret.Store(uint32(st))
	o.retSet.Store(true)
	close(o.retCh)
	if st != ndis.StatusPending {
		o.finish()
	}
}

// completed records a call of the requester's completion handler.
func (o *ccOp) completed(st ndis.Status) {
	if o.ctr != nil {
		o.ctr.Add(1)
	}
	if !o.retSet.Load() {
		o.early.Store(true)
	}
	o.cst.Store(uint32(st))
	o.ncomp.Add(1)
	o.finish()
}

// wait blocks until the outcome of the request is known and returns it.
func (o *ccOp) wait() ndis.Status {
	<-o.done
	if o.ncomp.Load() > 0 {
		return ndis.Status(o.cst.Load())
	}
	return ndis.Status(o.ret.Load())
}

// settle is wait, also waiting for the request to have returned (the
// completion may come first, R-GEN-10).
func (o *ccOp) settle() ndis.Status {
	<-o.retCh
	return o.wait()
}

// check says what is wrong with the outcomes the request had, or "".
func (o *ccOp) check() string {
	select {
	case <-o.retCh:
	default:
		return o.what + ": the request never returned"
	}
	ret, n, cst := ndis.Status(o.ret.Load()), o.ncomp.Load(), ndis.Status(o.cst.Load())
	switch {
	case ret != ndis.StatusPending && n != 0:
		return fmt.Sprintf("%s: returned %v and also got %d completion(s) (R-GEN-3)", o.what, ret, n)
	case ret == ndis.StatusPending && n != 1:
		return fmt.Sprintf("%s: returned PENDING and got %d completion(s) (R-GEN-4)", o.what, n)
	case ret == ndis.StatusPending && cst == ndis.StatusPending:
		return o.what + ": completed with NDIS_STATUS_PENDING as its final status"
	}
	return ""
}

// ccDeliver hands a completion to the request outstanding in slot.
func ccDeliver(t testing.TB, slot *atomic.Pointer[ccOp], what string, st ndis.Status) {
	if o := slot.Load(); o != nil {
		o.completed(st)
		return
	}
	t.Errorf("%s(%v) with no request outstanding", what, st)
}

// ccPool is a driver's fixed pool of workers. Its queue is unbounded, so a
// worker handing work to another pool (or its own) never blocks on it.
type ccPool struct {
	mu      sync.Mutex
	cond    sync.Cond
	q       []func()
	closed  bool
	wg      sync.WaitGroup
	stopped sync.Once
	t       testing.TB
}

func ccNewPool(t testing.TB, n int, seed, stream uint64) *ccPool {
	p := &ccPool{t: t}
	p.cond.L = &p.mu
	for i := range n {
		r := rand.New(rand.NewPCG(seed, stream<<16|uint64(i)))
		p.wg.Add(1)
		go p.work(r)
	}
	return p
}

func (p *ccPool) work(r *rand.Rand) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.q) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.q) == 0 {
			p.mu.Unlock()
			return
		}
		f := p.q[0]
		p.q[0] = nil
		p.q = p.q[1:]
		p.mu.Unlock()
		if r.IntN(2) == 0 {
			runtime.Gosched() // let the handler that queued f return first, or not
		}
		f()
	}
}

func (p *ccPool) submit(f func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.t.Errorf("work queued after the pool was stopped; running it inline")
		f()
		return
	}
	p.q = append(p.q, f)
	p.mu.Unlock()
	p.cond.Signal()
}

// stop lets the workers drain the queue and joins them.
func (p *ccPool) stop() {
	p.stopped.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cond.Broadcast()
		p.wg.Wait()
	})
}

// ccLife links the two ends of one call for the test: the MCM and the callee
// client post their view of the callee's VC here.
type ccLife struct {
	id     uint64
	mcm    chan *ccMVc
	callee chan *ccClVc
	data   sync.WaitGroup // sends not completed and receives not returned
}

// ccWorld is one mediator with a ccMCM adapter and ccClient bindings.
type ccWorld struct {
	t       *testing.T
	m       *ndis.Mediator
	seed    uint64
	modes   []ccMode
	strict  *atomic.Int64 // see TestConcurrentCompletionRacesReturn
	fam     ndis.AddressFamily
	d       *ccMCM
	clients []*ccClient
	pools   []*ccPool
	lives   sync.Map // id -> *ccLife
	lifeID  atomic.Uint64
	onVc    func(*ndis.Vc)   // test hook: a VC was created
	onDead  func(ccDeadVc)   // test hook: a VC was deleted
	tally   func(*ccOp) bool // test hook: extra assertion on every settled request
}

func ccSeed(t *testing.T) uint64 {
	if s := os.Getenv("CONDIS_CC_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CONDIS_CC_SEED: %v", err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

func ccNewWorld(t *testing.T, opts ndis.Options, modes []ccMode, nClients, workers int) *ccWorld {
	seed := ccSeed(t)
	t.Logf("seed %d (set CONDIS_CC_SEED to rerun with it)", seed)
	w := &ccWorld{t: t, m: ndis.New(opts), seed: seed, modes: modes,
		fam: ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}}
	t.Cleanup(w.stop)
	w.d = &ccMCM{w: w, pool: w.pool(workers), rng: w.rng(1 << 30), saps: map[string]ccTarget{}}
	a, st := w.m.AddMiniportCallManager("mcm", w.d, w.d, func(a *ndis.Adapter) ndis.Status {
		w.d.a = a
		return a.MCmRegisterAddressFamilyEx(w.fam)
	})
	if st != ndis.StatusSuccess {
		t.Fatalf("AddMiniportCallManager: %v", st)
	}
	for i := range nClients {
		c := &ccClient{w: w, name: "cl" + strconv.Itoa(i), pool: w.pool(workers)}
		if _, st := w.m.BindAdapter(a, c.name, c, c, func(b *ndis.Binding) ndis.Status {
			c.b = b
			return ndis.StatusSuccess
		}); st != ndis.StatusSuccess {
			t.Fatalf("BindAdapter %s: %v", c.name, st)
		}
		w.clients = append(w.clients, c)
	}
	return w
}

func (w *ccWorld) pool(n int) *ccPool {
	p := ccNewPool(w.t, n, w.seed, uint64(len(w.pools)+1))
	w.pools = append(w.pools, p)
	return p
}

// rng returns an unshared random source for one goroutine.
func (w *ccWorld) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.seed, stream))
}

func (w *ccWorld) pick(r *rand.Rand) ccMode { return w.modes[r.IntN(len(w.modes))] }

// stop joins every worker; everything queued runs first.
func (w *ccWorld) stop() {
	for _, p := range w.pools {
		p.stop()
	}
}

func (w *ccWorld) op(what string) *ccOp {
	return &ccOp{what: what, ctr: w.strict, retCh: make(chan struct{}), done: make(chan struct{})}
}

func (w *ccWorld) newLife() *ccLife {
	l := &ccLife{id: w.lifeID.Add(1), mcm: make(chan *ccMVc, 1), callee: make(chan *ccClVc, 1)}
	w.lives.Store(l.id, l)
	return l
}

func (w *ccWorld) life(id uint64) *ccLife {
	if l, ok := w.lives.Load(id); ok {
		return l.(*ccLife)
	}
	w.t.Errorf("call for unknown life %d", id)
	return nil
}

// respond answers a request in mode m. work does the responder's part and
// returns its context and final status; complete passes them to the
// completion function. It returns what the handler must return.
func (w *ccWorld) respond(pool *ccPool, m ccMode, what string, work func() (any, ndis.Status), complete func(any, ndis.Status) ndis.Status) (any, ndis.Status) {
	finish := func() {
		ctx, st := work()
		var before int64
		if w.strict != nil {
			before = w.strict.Load()
		}
		if cst := complete(ctx, st); cst != ndis.StatusSuccess {
			w.t.Errorf("%s: the completion function refused a valid completion (%v) with %v", what, st, cst)
		}
		if w.strict != nil && w.strict.Load() != before {
			w.t.Errorf("%s (%v): a requester's completion handler ran inside the completion function, while the responder's handler was still running", what, m)
		}
	}
	switch m {
	case ccSync:
		return work()
	case ccEarly:
		finish()
	case ccAsync, ccAsyncYield:
		pool.submit(finish)
		if m == ccAsyncYield {
			runtime.Gosched()
		}
	case ccRace:
		gate := make(chan struct{})
		pool.submit(func() { finish(); close(gate) })
		<-gate
	default:
		w.t.Errorf("%s: bad mode %v", what, m)
		return work()
	}
	return nil, ndis.StatusPending
}

// ccBlob is call parameters carrying b as the call-manager-specific blob.
func ccBlob(b ...byte) *ndis.CallParameters {
	return &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{
		CallMgrSpecific: ndis.SpecificParameters{ParamType: 0xCC, Parameters: b}}}
}

// ccAt is b[i], or 0 (ccSync, ccInline) when a request reaches a handler
// without the script byte: a request the mediator should have refused, which
// the test reports otherwise; no panic here to hide that report.
func ccAt(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func ccBlobOf(p *ndis.CallParameters) []byte {
	if p == nil || p.CallMgrParameters == nil {
		return nil
	}
	return p.CallMgrParameters.CallMgrSpecific.Parameters
}

// ccCall is the script of one call, carried in its parameters.
type ccCall struct {
	mk, in ccMode // how the MCM answers MakeCall; how the callee answers the offer
	reject bool   // the callee rejects the call
	nego   bool   // the callee negotiates with NdisClModifyCallQoS before answering (R-IN-9)
	qm     ccMode // how the MCM answers that negotiation
	life   uint64
	sap    string // the callee's SAP; "" for a multipoint call to the network
}

func (c ccCall) params() *ndis.CallParameters {
	b := []byte{byte(c.mk), byte(c.in), 0, byte(c.qm)}
	if c.reject {
		b[2] |= 1
	}
	if c.nego {
		b[2] |= 2
	}
	b = binary.LittleEndian.AppendUint64(b, c.life)
	return ccBlob(append(b, c.sap...)...)
}

func ccDecodeCall(p *ndis.CallParameters) ccCall {
	b := ccBlobOf(p)
	if len(b) < 12 {
		return ccCall{}
	}
	return ccCall{mk: ccMode(b[0]), in: ccMode(b[1]), reject: b[2]&1 != 0, nego: b[2]&2 != 0, qm: ccMode(b[3]),
		life: binary.LittleEndian.Uint64(b[4:12]), sap: string(b[12:])}
}

// ccTx tracks one sent list.
type ccTx struct {
	life   *ccLife     // nil for a send the mediator must refuse
	want   ndis.Status // the status it must complete with
	worker bool        // the MCM completes the chain on a worker (first list decides)
	split  bool        // ... one list at a time, in reverse order
	res    bool        // the MCM indicates the copy with ReceiveFlagsResources
	via    bool        // the receiver returns the copy on a worker
	done   atomic.Int32
}

// ccRx tracks one indicated list.
type ccRx struct {
	life *ccLife
	via  bool
	back atomic.Int32
}

// ---------------------------------------------------------------------------
// The miniport call manager.

type ccTarget struct {
	sap *ndis.Sap
	af  *ndis.Af
}

type ccMCM struct {
	w    *ccWorld
	a    *ndis.Adapter
	pool *ccPool

	rmu sync.Mutex
	rng *rand.Rand // modes for OpenAf and CloseAf, whose requests carry no data

	mu   sync.Mutex
	saps map[string]ccTarget
}

type ccMAf struct {
	h         *ndis.Af
	closeMode ccMode
}

type ccMSap struct {
	h     *ndis.Sap
	name  string
	dereg ccMode
}

// ccMVc is the MCM's context of a VC.
type ccMVc struct {
	h      *ndis.Vc
	caller *ccMVc // of an incoming VC: the outgoing VC it was set up for
	inOp   *ccOp  // of an incoming VC: NdisMCmDispatchIncomingCall, as the MCM saw it
	peer   *ccMVc // the other end while the call is up; under ccMCM.mu
	del    atomic.Int32
}

type ccMParty struct{ h *ndis.Party }

func (d *ccMCM) mode() ccMode {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	return d.w.pick(d.rng)
}

func (d *ccMCM) ok(what string, st ndis.Status) {
	if st != ndis.StatusSuccess {
		d.w.t.Errorf("mcm: %s: %v", what, st)
	}
}

func (d *ccMCM) ProtocolCmOpenAf(_ any, _ ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	ctx := &ccMAf{h: h, closeMode: d.mode()}
	return d.w.respond(d.pool, d.mode(), "ProtocolCmOpenAf",
		func() (any, ndis.Status) { return ctx, ndis.StatusSuccess },
		func(c any, st ndis.Status) ndis.Status { return d.a.MCmOpenAddressFamilyComplete(st, h, c) })
}

func (d *ccMCM) ProtocolCmCloseAf(afCtx any) ndis.Status {
	af := afCtx.(*ccMAf)
	_, st := d.w.respond(d.pool, af.closeMode, "ProtocolCmCloseAf",
		func() (any, ndis.Status) { return nil, ndis.StatusSuccess },
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmCloseAddressFamilyComplete(st, af.h) })
	return st
}

func (d *ccMCM) ProtocolCmNotifyCloseAfComplete(any, ndis.Status) {
	d.w.t.Errorf("mcm: unexpected ProtocolCmNotifyCloseAfComplete")
}

// ProtocolCmRegisterSap: the SAP name is the CO_SAP; SapType carries the
// modes of the registration (low byte) and of the deregistration.
func (d *ccMCM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	af := afCtx.(*ccMAf)
	s := &ccMSap{h: h, name: string(coSap.Sap), dereg: ccMode(coSap.SapType >> 8 & 0xFF)}
	return d.w.respond(d.pool, ccMode(coSap.SapType&0xFF), "ProtocolCmRegisterSap",
		func() (any, ndis.Status) {
			d.mu.Lock()
			d.saps[s.name] = ccTarget{sap: h, af: af.h}
			d.mu.Unlock()
			return s, ndis.StatusSuccess
		},
		func(c any, st ndis.Status) ndis.Status { return d.a.MCmRegisterSapComplete(st, h, c) })
}

func (d *ccMCM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	s := sapCtx.(*ccMSap)
	_, st := d.w.respond(d.pool, s.dereg, "ProtocolCmDeregisterSap",
		func() (any, ndis.Status) {
			d.mu.Lock()
			delete(d.saps, s.name)
			d.mu.Unlock()
			return nil, ndis.StatusSuccess
		},
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmDeregisterSapComplete(st, s.h) })
	return st
}

// ProtocolCmMakeCall: a point-to-point call is routed to the SAP named in
// its parameters; a multipoint call goes to "the network" (the test).
func (d *ccMCM) ProtocolCmMakeCall(vcCtx any, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*ccMVc)
	sc := ccDecodeCall(p)
	if party != nil {
		pc := &ccMParty{h: party}
		return d.w.respond(d.pool, sc.mk, "ProtocolCmMakeCall(multipoint)",
			func() (any, ndis.Status) {
				if st := d.a.MCmActivateVc(v.h, p); st != ndis.StatusSuccess {
					return nil, st
				}
				return pc, ndis.StatusSuccess
			},
			func(c any, st ndis.Status) ndis.Status { return d.a.MCmMakeCallComplete(st, v.h, party, c, p) })
	}
	return d.w.respond(d.pool, sc.mk, "ProtocolCmMakeCall",
		func() (any, ndis.Status) { return nil, d.setUp(v, p, sc) },
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmMakeCallComplete(st, v.h, nil, nil, p) })
}

// setUp offers the call to the callee and waits for its answer (which may
// come on any goroutine); on acceptance it connects both ends.
func (d *ccMCM) setUp(v *ccMVc, p *ndis.CallParameters, sc ccCall) ndis.Status {
	in := &ccMVc{caller: v, inOp: d.w.op("NdisMCmDispatchIncomingCall")}
	if l := d.w.life(sc.life); l != nil {
		l.mcm <- in
	}
	d.mu.Lock()
	tg, ok := d.saps[sc.sap]
	d.mu.Unlock()
	if !ok {
		d.w.t.Errorf("mcm: no SAP %q", sc.sap)
		return ndis.StatusInvalidAddress
	}
	h, st := d.a.MCmCreateVc(tg.af, in)
	if st != ndis.StatusSuccess {
		d.w.t.Errorf("mcm: MCmCreateVc: %v", st)
		return st
	}
	in.h = h
	d.ok("MCmActivateVc(incoming)", d.a.MCmActivateVc(h, p))
	in.inOp.returned(d.a.MCmDispatchIncomingCall(tg.sap, h, p))
	if st := in.inOp.wait(); st != ndis.StatusSuccess {
		d.ok("MCmDeactivateVc(rejected)", d.a.MCmDeactivateVc(h))
		d.ok("MCmDeleteVc(rejected)", d.a.MCmDeleteVc(h))
		return st
	}
	d.mu.Lock()
	v.peer, in.peer = in, v
	d.mu.Unlock()
	d.ok("MCmActivateVc(outgoing)", d.a.MCmActivateVc(v.h, p))
	d.ok("MCmDispatchCallConnected", d.a.MCmDispatchCallConnected(h))
	return ndis.StatusSuccess
}

func (d *ccMCM) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, _ *ndis.CallParameters) {
	vcCtx.(*ccMVc).inOp.completed(st)
}

// ProtocolCmCloseCall: data[0] is this close's mode; the rest goes to the
// other end with the incoming close.
func (d *ccMCM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v := vcCtx.(*ccMVc)
	var party *ndis.Party
	if partyCtx != nil {
		party = partyCtx.(*ccMParty).h
	}
	_, st := d.w.respond(d.pool, ccMode(ccAt(data, 0)), "ProtocolCmCloseCall",
		func() (any, ndis.Status) {
			d.mu.Lock()
			p := v.peer
			v.peer = nil
			if p != nil {
				p.peer = nil
			}
			d.mu.Unlock()
			if p != nil {
				d.ok("MCmDispatchIncomingCloseCall", d.a.MCmDispatchIncomingCloseCall(ndis.StatusSuccess, p.h, []byte{ccAt(data, 1), ccAt(data, 2)}))
			}
			d.ok("MCmDeactivateVc", d.a.MCmDeactivateVc(v.h))
			return nil, ndis.StatusSuccess
		},
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmCloseCallComplete(st, v.h, party) })
	return st
}

// ProtocolCmAddParty: params carry {mode, fail}.
func (d *ccMCM) ProtocolCmAddParty(_ any, p *ndis.CallParameters, h *ndis.Party) (any, ndis.Status) {
	b := ccBlobOf(p)
	return d.w.respond(d.pool, ccMode(ccAt(b, 0)), "ProtocolCmAddParty",
		func() (any, ndis.Status) {
			if ccAt(b, 1) != 0 {
				return nil, ndis.StatusResources
			}
			return &ccMParty{h: h}, ndis.StatusSuccess
		},
		func(c any, st ndis.Status) ndis.Status { return d.a.MCmAddPartyComplete(st, h, c, p) })
}

func (d *ccMCM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	pc := partyCtx.(*ccMParty)
	_, st := d.w.respond(d.pool, ccMode(ccAt(data, 0)), "ProtocolCmDropParty",
		func() (any, ndis.Status) { return nil, ndis.StatusSuccess },
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmDropPartyComplete(st, pc.h) })
	return st
}

// ProtocolCmModifyCallQoS re-activates the VC with the new parameters.
func (d *ccMCM) ProtocolCmModifyCallQoS(vcCtx any, p *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*ccMVc)
	_, st := d.w.respond(d.pool, ccMode(ccAt(ccBlobOf(p), 0)), "ProtocolCmModifyCallQoS",
		func() (any, ndis.Status) { return nil, d.a.MCmActivateVc(v.h, p) },
		func(_ any, st ndis.Status) ndis.Status { return d.a.MCmModifyCallQoSComplete(st, v.h, p) })
	return st
}

func (d *ccMCM) ProtocolCmActivateVcComplete(ndis.Status, any, *ndis.CallParameters) {
	d.w.t.Errorf("mcm: ProtocolCmActivateVcComplete called for an MCM (R-REG-5)")
}

func (d *ccMCM) ProtocolCmDeactivateVcComplete(ndis.Status, any) {
	d.w.t.Errorf("mcm: ProtocolCmDeactivateVcComplete called for an MCM (R-REG-5)")
}

func (d *ccMCM) ProtocolCoCreateVc(_ any, vc *ndis.Vc) (any, ndis.Status) {
	return &ccMVc{h: vc}, ndis.StatusSuccess
}

func (d *ccMCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	vcCtx.(*ccMVc).del.Add(1)
	return ndis.StatusSuccess
}

func (d *ccMCM) ProtocolCoOidRequest(_, _, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}

func (d *ccMCM) ProtocolCoOidRequestComplete(_, _, _ any, _ *ndis.OidRequest, _ ndis.Status) {}

func (d *ccMCM) MiniportCoOidRequest(_, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}

// MiniportCoSendNetBufferLists copies every list to the other end of the
// call, then completes the chain, whole or one list at a time in reverse
// order, inline or on a worker.
func (d *ccMCM) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, _ ndis.SendFlags) {
	v := vcCtx.(*ccMVc)
	var lists []*ndis.NetBufferList
	for n := nbls; n != nil; n = n.Next {
		lists = append(lists, n)
	}
	tx := nbls.Context.(*ccTx)
	work := func() {
		d.mu.Lock()
		p := v.peer
		d.mu.Unlock()
		for _, n := range lists {
			if p != nil {
				d.indicate(p, n)
			}
			n.Status = ndis.StatusSuccess
		}
		if !tx.split {
			d.ok("MCoSendNetBufferListsComplete", d.a.MCoSendNetBufferListsComplete(v.h, nbls, 0))
			return
		}
		for i := len(lists) - 1; i >= 0; i-- {
			lists[i].Next = nil
			d.ok("MCoSendNetBufferListsComplete", d.a.MCoSendNetBufferListsComplete(v.h, lists[i], 0))
		}
	}
	if tx.worker {
		d.pool.submit(work)
	} else {
		work()
	}
}

func (d *ccMCM) indicate(p *ccMVc, n *ndis.NetBufferList) {
	tx := n.Context.(*ccTx)
	rx := &ndis.NetBufferList{Data: append([]byte(nil), n.Data...), Context: &ccRx{life: tx.life, via: tx.via}}
	var fl ndis.ReceiveFlags
	if tx.res {
		fl = ndis.ReceiveFlagsResources
	}
	tx.life.data.Add(1)
	d.ok("MCoIndicateReceiveNetBufferLists", d.a.MCoIndicateReceiveNetBufferLists(p.h, rx, 1, fl))
	if tx.res {
		d.reclaim(rx) // the protocol could not keep it
	}
}

func (d *ccMCM) reclaim(n *ndis.NetBufferList) {
	rx := n.Context.(*ccRx)
	if k := rx.back.Add(1); k != 1 {
		d.w.t.Errorf("mcm: received list came back %d times", k)
		return
	}
	rx.life.data.Done()
}

func (d *ccMCM) MiniportReturnNetBufferLists(_ any, nbls *ndis.NetBufferList, _ ndis.ReturnFlags) {
	for n := nbls; n != nil; {
		next := n.Next
		n.Next = nil
		d.reclaim(n)
		n = next
	}
}

// ---------------------------------------------------------------------------
// The client.

type ccClient struct {
	w    *ccWorld
	name string
	b    *ndis.Binding
	pool *ccPool
	af   *ndis.Af
	afc  *ccClAf
	sap  *ndis.Sap
	sapc *ccClSap
}

type ccClAf struct{ open, close atomic.Pointer[ccOp] }

type ccClSap struct{ reg, dereg atomic.Pointer[ccOp] }

// ccClVc is a client's context of a VC: of one it created (outgoing) or one
// the MCM created for it (incoming).
type ccClVc struct {
	c           *ccClient
	h           *ndis.Vc
	mk, qos, cl atomic.Pointer[ccOp]
	clCh        chan *ccOp // the NdisClCloseCall answering an incoming close
	conn, del   atomic.Int32
	rx          atomic.Int32
}

func ccNewClVc(c *ccClient, h *ndis.Vc) *ccClVc {
	return &ccClVc{c: c, h: h, clCh: make(chan *ccOp, 1)}
}

type ccClParty struct {
	h         *ndis.Party
	add, drop atomic.Pointer[ccOp]
	dropCh    chan *ccOp // the NdisClDropParty answering an incoming drop
}

func ccNewClParty() *ccClParty { return &ccClParty{dropCh: make(chan *ccOp, 1)} }

func (c *ccClient) ProtocolCoAfRegisterNotify(any, ndis.AddressFamily) {}

func (c *ccClient) ProtocolCoCreateVc(_ any, vc *ndis.Vc) (any, ndis.Status) {
	return ccNewClVc(c, vc), ndis.StatusSuccess
}

func (c *ccClient) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	vcCtx.(*ccClVc).del.Add(1)
	return ndis.StatusSuccess
}

func (c *ccClient) ProtocolCoOidRequest(_, _, _ any, _ *ndis.OidRequest) ndis.Status {
	return ndis.StatusNotSupported
}

func (c *ccClient) ProtocolCoOidRequestComplete(_, _, _ any, _ *ndis.OidRequest, _ ndis.Status) {
	c.w.t.Errorf("%s: unexpected ProtocolCoOidRequestComplete", c.name)
}

func (c *ccClient) ProtocolCoReceiveNetBufferLists(_, vcCtx any, nbls *ndis.NetBufferList, _ int, fl ndis.ReceiveFlags) {
	v := vcCtx.(*ccClVc)
	via := false
	for n := nbls; n != nil; n = n.Next {
		v.rx.Add(1)
		if n.SourceHandle != v.h {
			c.w.t.Errorf("%s: received list's SourceHandle is %v, not %v", c.name, n.SourceHandle, v.h)
		}
		via = n.Context.(*ccRx).via
	}
	if fl&ndis.ReceiveFlagsResources != 0 {
		return
	}
	give := func() {
		if st := c.b.ReturnNetBufferLists(nbls, 0); st != ndis.StatusSuccess {
			c.w.t.Errorf("%s: ReturnNetBufferLists: %v", c.name, st)
		}
	}
	if via {
		c.pool.submit(give)
	} else {
		give()
	}
}

func (c *ccClient) ProtocolCoSendNetBufferListsComplete(_ any, nbls *ndis.NetBufferList, _ ndis.SendCompleteFlags) {
	for n := nbls; n != nil; {
		next := n.Next
		tx, ok := n.Context.(*ccTx)
		switch {
		case !ok:
			c.w.t.Errorf("%s: completed list is not one of ours", c.name)
		case tx.done.Add(1) != 1:
			c.w.t.Errorf("%s: a sent list completed %d times", c.name, tx.done.Load())
		default:
			if n.Status != tx.want {
				c.w.t.Errorf("%s: sent list completed with %v, want %v", c.name, n.Status, tx.want)
			}
			if tx.life != nil {
				tx.life.data.Done()
			}
		}
		n = next
	}
}

func (c *ccClient) ProtocolCoStatusEx(_, _ any, _ *ndis.StatusIndication) {}

func (c *ccClient) ProtocolClOpenAfCompleteEx(afCtx any, _ *ndis.Af, st ndis.Status) {
	ccDeliver(c.w.t, &afCtx.(*ccClAf).open, "ProtocolClOpenAfCompleteEx", st)
}

func (c *ccClient) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) {
	ccDeliver(c.w.t, &afCtx.(*ccClAf).close, "ProtocolClCloseAfComplete", st)
}

func (c *ccClient) ProtocolClNotifyCloseAf(any) ndis.Status {
	c.w.t.Errorf("%s: unexpected ProtocolClNotifyCloseAf", c.name)
	return ndis.StatusSuccess
}

func (c *ccClient) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, _ *ndis.CoSap, _ *ndis.Sap) {
	ccDeliver(c.w.t, &sapCtx.(*ccClSap).reg, "ProtocolClRegisterSapComplete", st)
}

func (c *ccClient) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	ccDeliver(c.w.t, &sapCtx.(*ccClSap).dereg, "ProtocolClDeregisterSapComplete", st)
}

func (c *ccClient) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, _ *ndis.Party, _ *ndis.CallParameters) {
	ccDeliver(c.w.t, &vcCtx.(*ccClVc).mk, "ProtocolClMakeCallComplete", st)
}

func (c *ccClient) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, _ *ndis.CallParameters) {
	ccDeliver(c.w.t, &vcCtx.(*ccClVc).qos, "ProtocolClModifyCallQoSComplete", st)
}

func (c *ccClient) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, _ any) {
	ccDeliver(c.w.t, &vcCtx.(*ccClVc).cl, "ProtocolClCloseCallComplete", st)
}

func (c *ccClient) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, _ *ndis.Party, _ *ndis.CallParameters) {
	ccDeliver(c.w.t, &partyCtx.(*ccClParty).add, "ProtocolClAddPartyComplete", st)
}

func (c *ccClient) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {
	ccDeliver(c.w.t, &partyCtx.(*ccClParty).drop, "ProtocolClDropPartyComplete", st)
}

// ProtocolClIncomingCall accepts (or, if scripted, rejects) in the mode the
// call's parameters say.
func (c *ccClient) ProtocolClIncomingCall(_, vcCtx any, p *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*ccClVc)
	sc := ccDecodeCall(p)
	if l := c.w.life(sc.life); l != nil {
		l.callee <- v
	}
	answer := ndis.StatusSuccess
	if sc.reject {
		answer = ndis.StatusNotAccepted
	}
	_, st := c.w.respond(c.pool, sc.in, "ProtocolClIncomingCall",
		func() (any, ndis.Status) {
			if sc.nego {
				// Negotiate first: inline while the handler runs, or from
				// the worker the offer was handed to, before or after the
				// mediator has seen the handler's PENDING.
				o := c.w.op("NdisClModifyCallQoS(negotiating the offer)")
				v.qos.Store(o)
				o.returned(c.b.ClModifyCallQoS(v.h, ccBlob(byte(sc.qm))))
				if st := o.wait(); st != ndis.StatusSuccess {
					c.w.t.Errorf("%s: ClModifyCallQoS while the offer pends (%v, R-IN-9): %v", c.name, sc.in, st)
				}
			}
			return nil, answer
		},
		func(_ any, st ndis.Status) ndis.Status { return c.b.ClIncomingCallComplete(st, v.h, p) })
	return st
}

func (c *ccClient) ProtocolClCallConnected(vcCtx any) { vcCtx.(*ccClVc).conn.Add(1) }

// ProtocolClIncomingCloseCall answers with NdisClCloseCall; data is {via,
// mode of that close}.
func (c *ccClient) ProtocolClIncomingCloseCall(_ ndis.Status, vcCtx any, data []byte) {
	v := vcCtx.(*ccClVc)
	o := c.w.op("NdisClCloseCall(answering an incoming close)")
	v.cl.Store(o)
	v.clCh <- o
	answer := func() { o.returned(c.b.ClCloseCall(v.h, nil, []byte{ccAt(data, 1)})) }
	if ccAt(data, 0) == ccOnWorker {
		c.pool.submit(answer)
	} else {
		answer()
	}
}

// ProtocolClIncomingDropParty answers with NdisClDropParty; data is {via,
// mode of that drop}.
func (c *ccClient) ProtocolClIncomingDropParty(_ ndis.Status, partyCtx any, data []byte) {
	pc := partyCtx.(*ccClParty)
	o := c.w.op("NdisClDropParty(answering an incoming drop)")
	pc.drop.Store(o)
	pc.dropCh <- o
	answer := func() { o.returned(c.b.ClDropParty(pc.h, []byte{ccAt(data, 1)})) }
	if ccAt(data, 0) == ccOnWorker {
		c.pool.submit(answer)
	} else {
		answer()
	}
}

func (c *ccClient) ProtocolClIncomingCallQoSChange(any, *ndis.CallParameters) {}

// ---------------------------------------------------------------------------
// Flows.

// setup opens the AF and registers a SAP named after the client, for every client.
func (w *ccWorld) setup(r *rand.Rand, ops *[]*ccOp) {
	for _, c := range w.clients {
		c.afc = &ccClAf{}
		o := w.op("NdisClOpenAddressFamilyEx")
		c.afc.open.Store(o)
		*ops = append(*ops, o)
		af, st := c.b.ClOpenAddressFamilyEx(w.fam, c.afc)
		o.returned(st)
		if st := o.settle(); st != ndis.StatusSuccess || af == nil {
			w.t.Fatalf("%s: open AF: %v (%v)", c.name, st, af)
		}
		c.af = af
		c.sap, c.sapc = c.register(r, c.name, ops)
	}
}

func (c *ccClient) register(r *rand.Rand, name string, ops *[]*ccOp) (*ndis.Sap, *ccClSap) {
	w := c.w
	sc := &ccClSap{}
	o := w.op("NdisClRegisterSap")
	sc.reg.Store(o)
	*ops = append(*ops, o)
	modes := uint32(w.pick(r)) | uint32(w.pick(r))<<8
	sap, st := c.b.ClRegisterSap(c.af, sc, &ndis.CoSap{SapType: modes, Sap: []byte(name)})
	o.returned(st)
	if st := o.settle(); st != ndis.StatusSuccess || sap == nil {
		w.t.Fatalf("%s: register SAP %s: %v (%v)", c.name, name, st, sap)
	}
	return sap, sc
}

func (c *ccClient) deregister(sap *ndis.Sap, sc *ccClSap, ops *[]*ccOp) {
	o := c.w.op("NdisClDeregisterSap")
	sc.dereg.Store(o)
	*ops = append(*ops, o)
	st := c.b.ClDeregisterSap(sap)
	o.returned(st)
	if st != ndis.StatusPending {
		c.w.t.Errorf("%s: ClDeregisterSap returned %v; an accepted deregistration always pends (spec §9.10)", c.name, st)
	}
	if st := o.settle(); st != ndis.StatusSuccess {
		c.w.t.Errorf("%s: deregister SAP: %v", c.name, st)
	}
}

// teardown deregisters the SAPs, closes the AFs and bindings and removes the adapter.
func (w *ccWorld) teardown(ops *[]*ccOp) {
	for _, c := range w.clients {
		c.deregister(c.sap, c.sapc, ops)
		o := w.op("NdisClCloseAddressFamily")
		c.afc.close.Store(o)
		*ops = append(*ops, o)
		o.returned(c.b.ClCloseAddressFamily(c.af))
		if st := o.settle(); st != ndis.StatusSuccess {
			w.t.Errorf("%s: close AF: %v", c.name, st)
		}
		if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
			w.t.Errorf("%s: CloseAdapterEx: %v", c.name, st)
		}
	}
	if st := w.d.a.RemoveAdapter(); st != ndis.StatusSuccess {
		w.t.Errorf("RemoveAdapter: %v", st)
	}
}

// finalCheck joins the workers, then checks that no request got a late or
// second outcome, and that nothing is left in the mediator.
func (w *ccWorld) finalCheck(ops []*ccOp) {
	w.stop()
	bad := 0
	for _, o := range ops {
		if s := o.check(); s != "" && bad < 20 {
			bad++
			w.t.Error(s)
		}
	}
	if s := w.m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
		w.t.Errorf("mediator not empty at the end:\n%s", s)
	}
}

// ccPair is one point-to-point call: the caller's VC and the callee's.
type ccPair struct {
	life           *ccLife
	caller, callee *ccClient
	cv, ev         *ccClVc // the caller's and the callee's contexts
	in             *ccMVc  // the MCM's context of the callee's VC
	ops            []*ccOp
}

type ccSide struct {
	c *ccClient
	v *ccClVc
}

func (p *ccPair) sides() [2]ccSide { return [2]ccSide{{p.caller, p.cv}, {p.callee, p.ev}} }

func (p *ccPair) track(o *ccOp) *ccOp {
	p.ops = append(p.ops, o)
	return o
}

// ccDeadVc is a deleted VC and its creator (c, or the MCM when c is nil).
type ccDeadVc struct {
	vc *ndis.Vc
	c  *ccClient
}

// connect creates the caller's VC and makes a call to the callee's SAP. On a
// scripted rejection it checks the failure and deletes the caller's VC.
func (w *ccWorld) connect(r *rand.Rand, caller, callee *ccClient, reject bool) (*ccPair, bool) {
	return w.connectWith(r, caller, callee, ccCall{mk: w.pick(r), in: w.pick(r), reject: reject, nego: r.IntN(4) == 0, qm: w.pick(r)})
}

func (w *ccWorld) connectWith(r *rand.Rand, caller, callee *ccClient, sc ccCall) (*ccPair, bool) {
	reject := sc.reject
	t := w.t
	p := &ccPair{life: w.newLife(), caller: caller, callee: callee}
	p.cv = ccNewClVc(caller, nil)
	h, st := caller.b.CoCreateVc(caller.af, p.cv)
	if st != ndis.StatusSuccess {
		t.Errorf("%s: CoCreateVc: %v", caller.name, st)
		return p, false
	}
	p.cv.h = h
	if w.onVc != nil {
		w.onVc(h)
	}
	sc.life, sc.sap = p.life.id, callee.name
	mk := p.track(w.op("NdisClMakeCall"))
	p.cv.mk.Store(mk)
	_, st = caller.b.ClMakeCall(h, sc.params(), nil)
	mk.returned(st)
	fst := mk.wait()
	p.in = <-p.life.mcm
	p.track(p.in.inOp)
	if fst != ndis.StatusSuccess && !reject {
		t.Errorf("ClMakeCall (MCM %v, callee %v): %v", sc.mk, sc.in, fst)
		return p, false
	}
	p.ev = <-p.life.callee
	if sc.nego {
		p.track(p.ev.qos.Load())
	}
	if reject {
		if fst != ndis.StatusNotAccepted {
			t.Errorf("ClMakeCall rejected by the callee: got %v, want NDIS_STATUS_NOT_ACCEPTED", fst)
		}
		if st := caller.b.CoDeleteVc(h); st != ndis.StatusSuccess {
			t.Errorf("CoDeleteVc after a failed call: %v", st)
		}
		if n := p.ev.del.Load(); n != 1 {
			t.Errorf("callee's ProtocolCoDeleteVc ran %d times for the rejected call's VC", n)
		}
		w.lives.Delete(p.life.id)
		w.checkOps(p.ops)
		return p, false
	}
	return p, true
}

func (w *ccWorld) modifyQoS(r *rand.Rand, p *ccPair) {
	s := p.sides()[r.IntN(2)]
	o := p.track(w.op("NdisClModifyCallQoS"))
	s.v.qos.Store(o)
	o.returned(s.c.b.ClModifyCallQoS(s.v.h, ccBlob(byte(w.pick(r)))))
	if st := o.wait(); st != ndis.StatusSuccess {
		w.t.Errorf("%s: ClModifyCallQoS: %v", s.c.name, st)
	}
}

// exchange sends chains both ways and waits until every send completed and
// every receive came back to the MCM. It returns the number of lists sent.
func (w *ccWorld) exchange(r *rand.Rand, p *ccPair) int {
	var want [2]int32
	sent := 0
	for i, s := range p.sides() {
		for range 1 + r.IntN(2) {
			n := 1 + r.IntN(3)
			worker, split := r.IntN(4) != 0, r.IntN(2) == 0
			var head *ndis.NetBufferList
			for range n {
				head = &ndis.NetBufferList{Next: head, Data: []byte("ping"),
					Context: &ccTx{life: p.life, worker: worker, split: split, res: r.IntN(2) == 0, via: r.IntN(2) == 0}}
			}
			want[1-i] += int32(n)
			sent += n
			p.life.data.Add(n)
			s.c.b.CoSendNetBufferLists(s.v.h, head, 0)
		}
	}
	p.life.data.Wait()
	for i, s := range p.sides() {
		if got := s.v.rx.Load(); got != want[i] {
			w.t.Errorf("%s received %d list(s), want %d", s.c.name, got, want[i])
		}
	}
	return sent
}

// hangUp closes the call from side; the other side answers the incoming
// close with its own NdisClCloseCall, inline or on a worker (via).
func (w *ccWorld) hangUp(r *rand.Rand, p *ccPair, side int, via byte) {
	s, o := p.sides()[side], p.sides()[1-side]
	op := p.track(w.op("NdisClCloseCall"))
	s.v.cl.Store(op)
	op.returned(s.c.b.ClCloseCall(s.v.h, nil, []byte{byte(w.pick(r)), via, byte(w.pick(r))}))
	if st := op.wait(); st != ndis.StatusSuccess {
		w.t.Errorf("%s: ClCloseCall: %v", s.c.name, st)
	}
	ans := p.track(<-o.v.clCh)
	if st := ans.settle(); st != ndis.StatusSuccess {
		w.t.Errorf("%s: ClCloseCall answering the incoming close: %v", o.c.name, st)
	}
}

// release deletes both VCs, each by its creator, and checks the requests of the call.
func (w *ccWorld) release(p *ccPair) {
	t := w.t
	if st := p.caller.b.CoDeleteVc(p.cv.h); st != ndis.StatusSuccess {
		t.Errorf("%s: CoDeleteVc: %v", p.caller.name, st)
	}
	if st := w.d.a.MCmDeleteVc(p.in.h); st != ndis.StatusSuccess {
		t.Errorf("MCmDeleteVc: %v", st)
	}
	if n := p.in.caller.del.Load(); n != 1 {
		t.Errorf("MCM's ProtocolCoDeleteVc ran %d times for the caller's VC", n)
	}
	if n := p.ev.del.Load(); n != 1 {
		t.Errorf("callee's ProtocolCoDeleteVc ran %d times", n)
	}
	if n := p.ev.conn.Load(); n != 1 {
		t.Errorf("callee's ProtocolClCallConnected ran %d times", n)
	}
	if n := p.cv.conn.Load(); n != 0 {
		t.Errorf("caller's ProtocolClCallConnected ran %d times", n)
	}
	w.lives.Delete(p.life.id)
	if w.onDead != nil {
		w.onDead(ccDeadVc{vc: p.cv.h, c: p.caller})
		w.onDead(ccDeadVc{vc: p.in.h})
	}
	w.checkOps(p.ops)
}

func (w *ccWorld) checkOps(ops []*ccOp) {
	for _, o := range ops {
		o.settle()
		if s := o.check(); s != "" {
			w.t.Error(s)
		}
		if w.tally != nil && !w.tally(o) {
			return
		}
	}
}

// lifecycle is one whole call. It returns the number of lists sent.
func (w *ccWorld) lifecycle(r *rand.Rand, caller, callee *ccClient, ops *[]*ccOp) int {
	p, ok := w.connect(r, caller, callee, false)
	defer func() { *ops = append(*ops, p.ops...) }()
	if !ok {
		return 0
	}
	if r.IntN(2) == 0 {
		w.modifyQoS(r, p)
	}
	sent := w.exchange(r, p)
	w.hangUp(r, p, r.IntN(2), byte(r.IntN(2)))
	w.release(p)
	return sent
}

// ccMultipoint is a multipoint call and its initial party.
type ccMultipoint struct {
	v    *ccClVc
	root *ndis.Party
}

func (w *ccWorld) multipoint(r *rand.Rand, c *ccClient, ops *[]*ccOp) ccMultipoint {
	v := ccNewClVc(c, nil)
	h, st := c.b.CoCreateVc(c.af, v)
	if st != ndis.StatusSuccess {
		w.t.Fatalf("CoCreateVc: %v", st)
	}
	v.h = h
	o := w.op("NdisClMakeCall(multipoint)")
	v.mk.Store(o)
	*ops = append(*ops, o)
	root, st := c.b.ClMakeCall(h, ccCall{mk: w.pick(r)}.params(), ccNewClParty())
	o.returned(st)
	if st := o.wait(); st != ndis.StatusSuccess || root == nil {
		w.t.Fatalf("ClMakeCall(multipoint): %v (%v)", st, root)
	}
	return ccMultipoint{v: v, root: root}
}

// addParty adds a party; fail scripts the MCM to refuse it.
func (w *ccWorld) addParty(r *rand.Rand, c *ccClient, mp ccMultipoint, fail bool, ops *[]*ccOp) (*ccClParty, *ccOp) {
	pc := ccNewClParty()
	o := w.op("NdisClAddParty")
	pc.add.Store(o)
	*ops = append(*ops, o)
	var f byte
	if fail {
		f = 1
	}
	h, st := c.b.ClAddParty(mp.v.h, pc, ccBlob(byte(w.pick(r)), f))
	o.returned(st)
	pc.h = h
	return pc, o
}

func (w *ccWorld) dropParty(r *rand.Rand, c *ccClient, pc *ccClParty, ops *[]*ccOp) *ccOp {
	o := w.op("NdisClDropParty")
	pc.drop.Store(o)
	*ops = append(*ops, o)
	o.returned(c.b.ClDropParty(pc.h, []byte{byte(w.pick(r))}))
	return o
}

func (w *ccWorld) closeMultipoint(r *rand.Rand, c *ccClient, mp ccMultipoint, ops *[]*ccOp) {
	o := w.op("NdisClCloseCall(multipoint)")
	mp.v.cl.Store(o)
	*ops = append(*ops, o)
	o.returned(c.b.ClCloseCall(mp.v.h, mp.root, []byte{byte(w.pick(r))}))
	if st := o.settle(); st != ndis.StatusSuccess {
		w.t.Errorf("ClCloseCall(multipoint, last party): %v", st)
	}
	if st := c.b.CoDeleteVc(mp.v.h); st != ndis.StatusSuccess {
		w.t.Errorf("CoDeleteVc(multipoint): %v", st)
	}
}

// observe takes snapshots until stop is closed, so that -race sees a reader
// of every field a snapshot shows (all taken under the mediator's lock)
// while the calls run, and checks what must hold at every instant.
func (w *ccWorld) observe(stop <-chan struct{}, done *sync.WaitGroup) {
	done.Add(1)
	go func() {
		defer done.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				w.t.Logf("%d snapshots taken while the calls ran", n)
				return
			default:
			}
			s := w.m.Snapshot()
			c := s.Counters
			if c.VcsDeleted > c.VcsCreated || c.CallsClosed > 2*c.CallsMade {
				w.t.Errorf("counters out of order: %+v", c)
				return
			}
			for _, v := range s.Vcs {
				bad := ""
				switch {
				case v.Lifecycle != "CREATING" && v.Lifecycle != "CREATED" && v.Lifecycle != "DELETING":
					bad = "lifecycle"
				case v.SendsOut < 0 || v.RecvsOut < 0:
					bad = "negative data counts"
				case v.Call == "CONNECTED" && v.Activation != "ACTIVE":
					bad = "connected but not active" // these drivers activate before connecting
				case v.Call == "CONNECTED" && v.Closing:
					bad = "connected and marked closing"
				}
				if bad != "" {
					w.t.Errorf("snapshot: %s: %+v", bad, v)
					return
				}
			}
			runtime.Gosched()
		}
	}()
}

func ccVcInfo(s ndis.Snapshot, h *ndis.Vc) (ndis.VcInfo, bool) {
	name := h.String()
	for _, v := range s.Vcs {
		if v.Handle == name {
			return v, true
		}
	}
	return ndis.VcInfo{}, false
}

// ---------------------------------------------------------------------------
// Tests.

// TestConcurrentCallLifecycles runs G goroutines of K whole calls each on one
// mediator, between several clients, every request answered in a random mode
// by drivers whose completions run on their worker goroutines.
func TestConcurrentCallLifecycles(t *testing.T) {
	const G, K, C = 8, 400, 4
	w := ccNewWorld(t, ndis.Options{Name: "concurrent", OnViolation: ndis.FailOn(t)}, ccAllModes, C, G+2)
	var ops []*ccOp
	w.setup(w.rng(1000), &ops)

	per := make([][]*ccOp, G)
	sent := make([]int, G)
	var wg, owg sync.WaitGroup
	stop := make(chan struct{})
	w.observe(stop, &owg)
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := w.rng(uint64(g))
			for range K {
				sent[g] += w.lifecycle(r, w.clients[r.IntN(C)], w.clients[r.IntN(C)], &per[g])
			}
		}()
	}
	wg.Wait()
	close(stop)
	owg.Wait()
	total := 0
	for g := range G {
		ops = append(ops, per[g]...)
		total += sent[g]
	}
	s := w.m.Snapshot()
	c := s.Counters
	if c.VcsCreated != 2*G*K || c.VcsDeleted != 2*G*K || c.CallsMade != G*K || c.CallsDispatched != G*K || c.CallsClosed != 2*G*K {
		t.Errorf("counters after %d calls: %+v", G*K, c)
	}
	if c.SendsForwarded != uint64(total) || c.SendsRefused != 0 || c.ReceivesIndicated != uint64(total) || c.ReceivesDropped != 0 {
		t.Errorf("data counters after %d sends: %+v", total, c)
	}
	if len(s.Vcs) != 0 {
		t.Errorf("VCs left after the calls:\n%s", s)
	}
	w.teardown(&ops)
	w.finalCheck(ops)
	if v := w.m.Violations(); len(v) != 0 {
		t.Errorf("%d violation(s), first %v", len(v), v[0])
	}
	t.Logf("%d calls, %d requests, %d lists sent", G*K, len(ops), total)
}

// TestConcurrentCompletionRacesReturn makes every responder complete from a
// worker while its handler is still running (the handler waits for the
// worker to have called the completion function): R-GEN-10, every time.
// Every requester must see its completion handler run exactly once, before
// its request returns PENDING, and not inside the responder's completion
// function (the handler was still running then). The flows are sequential
// and incoming closes and drops are answered inline, so the check that no
// completion handler runs inside a completion function (w.strict) is exact.
func TestConcurrentCompletionRacesReturn(t *testing.T) {
	const N = 300
	w := ccNewWorld(t, ndis.Options{Name: "race", OnViolation: ndis.FailOn(t)}, []ccMode{ccRace}, 2, 3)
	w.strict = new(atomic.Int64)
	early := func(o *ccOp) bool {
		if !o.early.Load() || ndis.Status(o.ret.Load()) != ndis.StatusPending {
			t.Errorf("%s: returned %v; its completion handler ran before the return: %v", o.what, ndis.Status(o.ret.Load()), o.early.Load())
			return false
		}
		return true
	}
	w.tally = early
	var ops []*ccOp
	r := w.rng(0)
	w.setup(r, &ops)
	w.checkOps(ops)
	caller, callee := w.clients[0], w.clients[1]

	// state checks one VC against the snapshot.
	state := func(h *ndis.Vc, call, act string, parties int) {
		t.Helper()
		v, ok := ccVcInfo(w.m.Snapshot(), h)
		switch {
		case !ok:
			t.Errorf("%v is gone", h)
		case v.Call != call || v.Activation != act || len(v.Pending) != 0 || len(v.Parties) != parties:
			t.Errorf("%v is %s/%s pending=%v parties=%d, want %s/%s, none pending, %d parties", h, v.Call, v.Activation, v.Pending, len(v.Parties), call, act, parties)
		}
	}
	gone := func(hs ...*ndis.Vc) {
		t.Helper()
		s := w.m.Snapshot()
		for _, h := range hs {
			if _, ok := ccVcInfo(s, h); ok {
				t.Errorf("%v still there after its deletion", h)
			}
		}
	}
	for i := range N {
		// A rejected call: the offer's completion races, the MakeCall fails.
		if i%5 == 0 {
			if p, ok := w.connect(r, caller, callee, true); !ok {
				gone(p.cv.h, p.in.h)
				ops = append(ops, p.ops...)
			}
		}
		// A point-to-point call, its QoS change and its close from either side.
		p, ok := w.connect(r, caller, callee, false)
		if !ok {
			t.Fatal("connect failed")
		}
		w.checkOps(p.ops)
		state(p.cv.h, "CONNECTED", "ACTIVE", 0)
		state(p.in.h, "CONNECTED", "ACTIVE", 0)
		w.modifyQoS(r, p)
		w.checkOps(p.ops)
		state(p.cv.h, "CONNECTED", "ACTIVE", 0)
		state(p.in.h, "CONNECTED", "ACTIVE", 0)
		w.hangUp(r, p, i%2, ccInline)
		w.checkOps(p.ops)
		state(p.cv.h, "CLOSED", "INACTIVE", 0)
		state(p.in.h, "CLOSED", "INACTIVE", 0)
		w.release(p)
		gone(p.cv.h, p.in.h)
		ops = append(ops, p.ops...)

		// A multipoint call: a party added and dropped, one refused, one
		// dropped by the network, then the close with the last party.
		var mops []*ccOp
		mp := w.multipoint(r, caller, &mops)
		state(mp.v.h, "CONNECTED", "ACTIVE", 1)
		local, o1 := w.addParty(r, caller, mp, false, &mops)
		_, o2 := w.addParty(r, caller, mp, true, &mops)
		remote, o3 := w.addParty(r, caller, mp, false, &mops)
		for _, o := range []*ccOp{o1, o2, o3} {
			o.settle()
		}
		if st := o2.wait(); st != ndis.StatusResources {
			t.Errorf("refused AddParty: %v", st)
		}
		state(mp.v.h, "CONNECTED", "ACTIVE", 3)
		w.dropParty(r, caller, local, &mops).settle()
		if st := w.d.a.MCmDispatchIncomingDropParty(ndis.StatusSuccess, remote.h, []byte{ccInline, byte(ccRace)}); st != ndis.StatusSuccess {
			t.Errorf("MCmDispatchIncomingDropParty: %v", st)
		}
		mops = append(mops, <-remote.dropCh)
		state(mp.v.h, "CONNECTED", "ACTIVE", 1)
		w.closeMultipoint(r, caller, mp, &mops)
		gone(mp.v.h)
		w.checkOps(mops)
		ops = append(ops, mops...)
		if t.Failed() {
			break
		}
	}
	n := len(ops)
	w.teardown(&ops)
	w.checkOps(ops[n:])
	w.finalCheck(ops)
	if v := w.m.Violations(); len(v) != 0 {
		t.Errorf("%d violation(s), first %v", len(v), v[0])
	}
	t.Logf("%d requests, every completion delivered before its request returned PENDING", len(ops))
}

// TestConcurrentOfferNegotiatedBeforePendingSeen: a client that pends an
// incoming call by handing it to a worker may have that worker negotiate
// (NdisClModifyCallQoS, R-IN-9) before the mediator has seen the handler's
// PENDING; in ccRace mode always, since the handler waits for the worker.
// The negotiation must be accepted, exactly as a completion arriving early
// is (R-GEN-10): the client cannot know when the mediator saw its return.
// Also covers negotiating inline in the handler (ccSync, ccEarly).
func TestConcurrentOfferNegotiatedBeforePendingSeen(t *testing.T) {
	w := ccNewWorld(t, ndis.Options{Name: "negotiate", OnViolation: ndis.FailOn(t)}, ccAllModes, 2, 4)
	var ops []*ccOp
	r := w.rng(0)
	w.setup(r, &ops)
	for _, in := range ccAllModes {
		for _, qm := range ccAllModes {
			for range 4 {
				p, ok := w.connectWith(r, w.clients[0], w.clients[1], ccCall{mk: w.pick(r), in: in, nego: true, qm: qm})
				if !ok {
					t.Fatalf("callee answering %v, MCM answering the negotiation %v: call failed", in, qm)
				}
				w.hangUp(r, p, r.IntN(2), byte(r.IntN(2)))
				w.release(p)
				ops = append(ops, p.ops...)
			}
		}
	}
	w.teardown(&ops)
	w.finalCheck(ops)
	if v := w.m.Violations(); len(v) != 0 {
		t.Errorf("%d violation(s), first %v", len(v), v[0])
	}
}

// ccExpect counts the violations a goroutine expects, by rule, function,
// driver and status.
type ccExpect map[string]int

func ccKey(rule, fn, driver string, st ndis.Status) string {
	return rule + " " + fn + " by " + driver + " -> " + st.String()
}

// TestConcurrentMisuseDoesNotCorrupt hammers the mediator with requests it
// must refuse while valid calls run on the same mediator, drivers and (for
// the misuse that is refused before any state is looked at) the same VCs.
func TestConcurrentMisuseDoesNotCorrupt(t *testing.T) {
	const G, K, H, N, Nmax = 4, 150, 4, 500, 3000
	w := ccNewWorld(t, ndis.Options{Name: "misuse", KeepViolations: 1 << 20, Trace: func(e ndis.Event) { _ = e.String() }}, ccAllModes, 3, G+2)
	var ops []*ccOp
	r := w.rng(1000)
	w.setup(r, &ops)
	A, B := w.clients[0], w.clients[1]

	// Fixtures whose state stays put while the misuse runs.
	var live []*ccPair
	for range 3 {
		p, ok := w.connect(r, A, B, false)
		if !ok {
			t.Fatal("connect failed")
		}
		live = append(live, p)
	}
	closed, ok := w.connect(r, A, B, false)
	if !ok {
		t.Fatal("connect failed")
	}
	w.hangUp(r, closed, 1, ccOnWorker)
	deadVc, st := A.b.CoCreateVc(A.af, ccNewClVc(A, nil))
	if st != ndis.StatusSuccess || A.b.CoDeleteVc(deadVc) != ndis.StatusSuccess {
		t.Fatal("dead VC fixture")
	}
	deadSap, deadSapc := A.register(r, "gone", &ops)
	A.deregister(deadSap, deadSapc, &ops)
	mp := w.multipoint(r, A, &ops)
	pc, o := w.addParty(r, A, mp, false, &ops)
	if o.settle() != ndis.StatusSuccess || w.dropParty(r, A, pc, &ops).settle() != ndis.StatusSuccess {
		t.Fatal("dead party fixture")
	}
	deadParty := pc.h

	// What the valid calls leave behind feeds the misuse.
	var gmu sync.Mutex
	grave := []ccDeadVc{{vc: deadVc, c: A}}
	w.onDead = func(d ccDeadVc) {
		gmu.Lock()
		grave = append(grave, d)
		gmu.Unlock()
	}
	var recent atomic.Pointer[ndis.Vc]
	w.onVc = func(h *ndis.Vc) { recent.Store(h) }

	validDone := make(chan struct{})
	var vwg, mwg, owg sync.WaitGroup
	w.observe(validDone, &owg)
	per := make([][]*ccOp, G)
	for g := range G {
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			r := w.rng(uint64(g))
			for range K {
				w.lifecycle(r, w.clients[r.IntN(3)], w.clients[r.IntN(3)], &per[g])
			}
		}()
	}
	expect := make([]ccExpect, H)
	refused := make([]int, H)
	for h := range H {
		expect[h] = ccExpect{}
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			r := w.rng(uint64(100 + h))
			ex := expect[h]
			exp := func(what string, got, want ndis.Status, rule, fn, drv string) {
				if got != want {
					t.Errorf("misuse %s: returned %v, want %v (%s)", what, got, want, rule)
				}
				ex[ccKey(rule, fn, drv, want)]++
				refused[h]++
			}
			send := func(c *ccClient, vc *ndis.Vc, want ndis.Status, rule string) {
				tx := &ccTx{want: want}
				c.b.CoSendNetBufferLists(vc, &ndis.NetBufferList{Data: []byte("late"), Context: tx}, 0)
				if n := tx.done.Load(); n != 1 {
					t.Errorf("refused send on %v completed %d times", vc, n)
				}
				ex[ccKey(rule, "NdisCoSendNetBufferLists", c.name, want)]++
				refused[h]++
			}
			dead := func() ccDeadVc {
				gmu.Lock()
				defer gmu.Unlock()
				return grave[r.IntN(len(grave))]
			}
			anyVc := func() *ndis.Vc {
				switch r.IntN(4) {
				case 0:
					if v := recent.Load(); v != nil {
						return v // probably in use by a valid call right now
					}
				case 1:
					return dead().vc
				case 2:
					return nil
				}
				return live[r.IntN(len(live))].cv.h
			}
			const mcm = "mcm"
			for i := 0; i < Nmax; i++ {
				if i >= N {
					select {
					case <-validDone:
						return
					default:
					}
				}
				l := live[r.IntN(len(live))]
				switch r.IntN(24) {
				case 0: // deletes by non-creators
					exp("delete by another client", B.b.CoDeleteVc(l.cv.h), ndis.StatusFailure, "R-VC-5", "NdisCoDeleteVc", B.name)
				case 1:
					exp("delete by the MCM", w.d.a.MCmDeleteVc(l.cv.h), ndis.StatusFailure, "R-VC-5", "NdisMCmDeleteVc", mcm)
				case 2:
					exp("delete of the MCM's VC by its client", B.b.CoDeleteVc(l.in.h), ndis.StatusFailure, "R-VC-5", "NdisCoDeleteVc", B.name)
				case 3: // deletes of active VCs by their creators
					exp("delete of an active VC", A.b.CoDeleteVc(l.cv.h), ndis.StatusNotAccepted, "R-VC-6", "NdisCoDeleteVc", A.name)
				case 4:
					exp("MCM delete of an active VC", w.d.a.MCmDeleteVc(l.in.h), ndis.StatusNotAccepted, "R-VC-7", "NdisMCmDeleteVc", mcm)
				case 5: // double completions
					exp("MakeCall completed twice", w.d.a.MCmMakeCallComplete(ndis.StatusSuccess, l.cv.h, nil, nil, nil), ndis.StatusFailure, "R-GEN-2", "NdisMCmMakeCallComplete", mcm)
				case 6:
					exp("CloseCall completed with none pending", w.d.a.MCmCloseCallComplete(ndis.StatusSuccess, l.cv.h, nil), ndis.StatusFailure, "R-GEN-2", "NdisMCmCloseCallComplete", mcm)
				case 7:
					exp("incoming call answered twice", B.b.ClIncomingCallComplete(ndis.StatusSuccess, l.in.h, nil), ndis.StatusFailure, "R-GEN-2", "NdisClIncomingCallComplete", B.name)
				case 8:
					exp("QoS change completed with none pending", w.d.a.MCmModifyCallQoSComplete(ndis.StatusSuccess, l.in.h, nil), ndis.StatusFailure, "R-GEN-2", "NdisMCmModifyCallQoSComplete", mcm)
				case 9:
					exp("AddParty completed twice", w.d.a.MCmAddPartyComplete(ndis.StatusSuccess, deadParty, &ccMParty{}, nil), ndis.StatusFailure, "R-GEN-2", "NdisMCmAddPartyComplete", mcm)
					exp("DropParty completed twice", w.d.a.MCmDropPartyComplete(ndis.StatusSuccess, deadParty), ndis.StatusFailure, "R-GEN-2", "NdisMCmDropPartyComplete", mcm)
				case 10: // completions with PENDING, on any VC
					exp("MakeCall completed with PENDING", w.d.a.MCmMakeCallComplete(ndis.StatusPending, anyVc(), nil, nil, nil), ndis.StatusFailure, "R-GEN-1", "NdisMCmMakeCallComplete", mcm)
				case 11:
					exp("CloseCall completed with PENDING", w.d.a.MCmCloseCallComplete(ndis.StatusPending, anyVc(), nil), ndis.StatusFailure, "R-GEN-1", "NdisMCmCloseCallComplete", mcm)
				case 12:
					exp("incoming call answered with PENDING", B.b.ClIncomingCallComplete(ndis.StatusPending, anyVc(), nil), ndis.StatusFailure, "R-IN-3", "NdisClIncomingCallComplete", B.name)
				case 13:
					exp("AddParty completed with PENDING", w.d.a.MCmAddPartyComplete(ndis.StatusPending, mp.root, nil, nil), ndis.StatusFailure, "R-GEN-1", "NdisMCmAddPartyComplete", mcm)
					exp("DropParty completed with PENDING", w.d.a.MCmDropPartyComplete(ndis.StatusPending, mp.root), ndis.StatusFailure, "R-GEN-1", "NdisMCmDropPartyComplete", mcm)
				case 14: // deleted handles
					if d := dead(); d.c != nil {
						exp("delete of a deleted VC", d.c.b.CoDeleteVc(d.vc), ndis.StatusFailure, "R-VC-9", "NdisCoDeleteVc", d.c.name)
					} else {
						exp("MCM delete of a deleted VC", w.d.a.MCmDeleteVc(d.vc), ndis.StatusFailure, "R-VC-9", "NdisMCmDeleteVc", mcm)
					}
				case 15:
					c := w.clients[r.IntN(3)]
					_, st := c.b.ClMakeCall(dead().vc, ccBlob(0), nil)
					exp("MakeCall on a deleted VC", st, ndis.StatusFailure, "R-VC-9", "NdisClMakeCall", c.name)
				case 16:
					send(w.clients[r.IntN(3)], dead().vc, ndis.StatusFailure, "R-VC-9")
				case 17:
					exp("completion on a deleted VC", w.d.a.MCmMakeCallComplete(ndis.StatusSuccess, dead().vc, nil, nil, nil), ndis.StatusFailure, "R-VC-9", "NdisMCmMakeCallComplete", mcm)
					exp("drop of a dropped party", A.b.ClDropParty(deadParty, nil), ndis.StatusFailure, "R-PTY-9", "NdisClDropParty", A.name)
				case 18: // sends after close
					send(A, closed.cv.h, ndis.StatusClosing, "R-CLOSE-2")
					send(B, closed.ev.h, ndis.StatusClosing, "R-CLOSE-2")
				case 19: // closes of closed calls
					exp("close of a closed call", A.b.ClCloseCall(closed.cv.h, nil, []byte{0}), ndis.StatusFailure, "R-CLOSE-3", "NdisClCloseCall", A.name)
					exp("close of a closed incoming call", B.b.ClCloseCall(closed.ev.h, nil, []byte{0}), ndis.StatusFailure, "R-CLOSE-11", "NdisClCloseCall", B.name)
				case 20:
					_, st := A.b.ClMakeCall(l.cv.h, ccBlob(0), nil)
					exp("second call on a connected VC", st, ndis.StatusFailure, "R-CALL-1", "NdisClMakeCall", A.name)
				case 21:
					exp("drop of the last party", A.b.ClDropParty(mp.root, nil), ndis.StatusFailure, "R-PTY-10", "NdisClDropParty", A.name)
					_, st := A.b.ClAddParty(l.cv.h, ccNewClParty(), ccBlob(0, 0))
					exp("AddParty on a point-to-point call", st, ndis.StatusFailure, "R-PTY-1", "NdisClAddParty", A.name)
				case 22:
					exp("incoming close with PENDING", w.d.a.MCmDispatchIncomingCloseCall(ndis.StatusPending, l.in.h, nil), ndis.StatusFailure, "R-CLOSE-19", "NdisMCmDispatchIncomingCloseCall", mcm)
					exp("deactivation of an inactive VC", w.d.a.MCmDeactivateVc(closed.in.h), ndis.StatusNotAccepted, "R-ACT-11", "NdisMCmDeactivateVc", mcm)
				case 23:
					exp("second deregistration", A.b.ClDeregisterSap(deadSap), ndis.StatusFailure, "R-SAP-6", "NdisClDeregisterSap", A.name)
					exp("AF close with VCs on it", A.b.ClCloseAddressFamily(A.af), ndis.StatusFailure, "R-AF-12", "NdisClCloseAddressFamily", A.name)
					exp("NdisCm completion by a client", A.b.CmMakeCallComplete(ndis.StatusSuccess, l.cv.h, nil, nil, nil), ndis.StatusFailure, "R-GEN-9", "NdisCmMakeCallComplete", A.name)
				}
			}
		}()
	}
	vwg.Wait()
	close(validDone)
	mwg.Wait()
	owg.Wait()
	for g := range G {
		ops = append(ops, per[g]...)
	}

	// The fixtures still work: close and delete them properly.
	for _, p := range live {
		w.hangUp(r, p, r.IntN(2), byte(r.IntN(2)))
		w.release(p)
		ops = append(ops, p.ops...)
	}
	w.release(closed)
	ops = append(ops, closed.ops...)
	w.closeMultipoint(r, A, mp, &ops)
	w.teardown(&ops)
	w.finalCheck(ops)

	// Every refusal, and nothing else, is a violation with its rule ID.
	want := ccExpect{}
	n := 0
	for h := range H {
		n += refused[h]
		for k, c := range expect[h] {
			want[k] += c
		}
	}
	got := ccExpect{}
	vs := w.m.Violations()
	for _, v := range vs {
		got[ccKey(v.Rule, v.Func, v.Driver, v.Status)]++
	}
	var diff []string
	for k, c := range want {
		if got[k] != c {
			diff = append(diff, fmt.Sprintf("%s: %d violation(s), want %d", k, got[k], c))
		}
	}
	for k, c := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s: %d unexpected violation(s)", k, c))
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("violations differ from the refused requests:\n%s", strings.Join(diff, "\n"))
	}
	if len(vs) != n {
		t.Errorf("%d violations for %d refused requests", len(vs), n)
	}
	t.Logf("%d valid calls, %d refused requests, %d requests checked", G*K, n, len(ops))
}

// TestConcurrentMultipointParties adds and drops parties of one multipoint
// call from several goroutines while the network drops others (an incoming
// drop the client answers with NdisClDropParty), and checks the party list
// against the counters all along.
func TestConcurrentMultipointParties(t *testing.T) {
	const P, R, NET = 4, 300, 2
	w := ccNewWorld(t, ndis.Options{Name: "multipoint", OnViolation: ndis.FailOn(t)}, ccAllModes, 1, P+NET+2)
	var ops []*ccOp
	r := w.rng(1000)
	w.setup(r, &ops)
	A := w.clients[0]
	mp := w.multipoint(r, A, &ops)
	root := mp.root.String()

	// check compares the party list with the counters, under one snapshot.
	check := func(s ndis.Snapshot) bool {
		v, ok := ccVcInfo(s, mp.v.h)
		if !ok {
			t.Errorf("multipoint VC gone")
			return false
		}
		if len(v.Parties) == 0 || v.Parties[0].Handle != root || v.Parties[0].State != "CONNECTED" {
			t.Errorf("initial party missing or not connected: %+v", v.Parties)
			return false
		}
		added := 0
		for _, p := range v.Parties[1:] {
			switch p.State {
			case "ADDING":
			case "CONNECTED", "DROP_INDICATED", "DROPPING":
				added++
			default:
				t.Errorf("party %s is %s in the list", p.Handle, p.State)
				return false
			}
		}
		if c := s.Counters; uint64(added) != c.PartiesAdded-c.PartiesDropped {
			t.Errorf("%d added parties in the list, counters say %d added and %d dropped", added, c.PartiesAdded, c.PartiesDropped)
			return false
		}
		return true
	}

	net := make(chan *ccClParty)
	var nwg, awg, owg sync.WaitGroup
	for i := range NET {
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			r := w.rng(uint64(200 + i))
			for pc := range net {
				if st := w.d.a.MCmDispatchIncomingDropParty(ndis.StatusSuccess, pc.h, []byte{byte(r.IntN(2)), byte(w.pick(r))}); st != ndis.StatusSuccess {
					t.Errorf("MCmDispatchIncomingDropParty: %v", st)
				}
			}
		}()
	}
	stop := make(chan struct{})
	owg.Add(1)
	go func() {
		defer owg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !check(w.m.Snapshot()) {
				return
			}
			runtime.Gosched()
		}
	}()
	per := make([][]*ccOp, P)
	adds := make([]int, P)
	for g := range P {
		awg.Add(1)
		go func() {
			defer awg.Done()
			r := w.rng(uint64(g))
			for range R {
				var added []*ccClParty
				for range 1 + r.IntN(4) {
					fail := r.IntN(8) == 0
					pc, o := w.addParty(r, A, mp, fail, &per[g])
					st := o.wait()
					switch {
					case fail && st != ndis.StatusResources:
						t.Errorf("refused AddParty: %v", st)
					case !fail && st != ndis.StatusSuccess:
						t.Errorf("AddParty: %v", st)
					case !fail:
						added = append(added, pc)
						adds[g]++
					}
				}
				r.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
				var drops []*ccOp
				for _, pc := range added {
					if r.IntN(2) == 0 {
						drops = append(drops, w.dropParty(r, A, pc, &per[g]))
					} else {
						net <- pc
						o := <-pc.dropCh
						per[g] = append(per[g], o)
						drops = append(drops, o)
					}
				}
				for _, o := range drops {
					if st := o.settle(); st != ndis.StatusSuccess {
						t.Errorf("%s: %v", o.what, st)
					}
				}
			}
		}()
	}
	awg.Wait()
	close(net)
	nwg.Wait()
	close(stop)
	owg.Wait()
	total := 0
	for g := range P {
		ops = append(ops, per[g]...)
		total += adds[g]
	}

	s := w.m.Snapshot()
	check(s)
	if v, _ := ccVcInfo(s, mp.v.h); len(v.Parties) != 1 || len(v.Pending) != 0 {
		t.Errorf("multipoint VC at the end: %+v", v)
	}
	if c := s.Counters; c.PartiesAdded != uint64(total) || c.PartiesDropped != uint64(total) {
		t.Errorf("%d parties added and dropped; counters say %d added, %d dropped", total, c.PartiesAdded, c.PartiesDropped)
	}
	w.closeMultipoint(r, A, mp, &ops)
	w.teardown(&ops)
	w.finalCheck(ops)
	if v := w.m.Violations(); len(v) != 0 {
		t.Errorf("%d violation(s), first %v", len(v), v[0])
	}
	t.Logf("%d parties added and dropped by %d goroutines and %d network goroutines", total, P, NET)
}

// TestConcurrentSnapshotCostIndependentOfViolations is the regression test
// for a Snapshot that copied every violation ever recorded (to count them)
// while holding the mediator's lock: with tens of thousands of refusals an
// observer's snapshots stalled every goroutine calling into the mediator.
// The copy is measured in bytes allocated, not time.
func TestConcurrentSnapshotCostIndependentOfViolations(t *testing.T) {
	m := ndis.New(ndis.Options{})
	perSnapshot := func() uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			m.Snapshot()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 10
	}
	base := perSnapshot()
	const n = 20000
	for range n {
		m.BindAdapter(nil, "nobody", nil, nil, nil) // refused: R-REG-1
	}
	if got := m.Snapshot().Counters.Violations; got != n {
		t.Fatalf("Counters.Violations = %d, want %d", got, n)
	}
	if got := perSnapshot(); got > base+1024 {
		t.Errorf("a snapshot allocates %d bytes with %d violations recorded, %d with none: it copies the violations", got, n, base)
	}
}
