// Package demo is the story `condis demo` tells: a mediator, a call manager
// and three clients, an address family opened, SAPs registered, calls made,
// data sent, parties added and dropped, calls closed from either side, and
// every mediator event printed in order. Each step checks what it must see;
// Run returns an error naming the first step that did not behave.
package demo

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// Options choose the topology and how the drivers complete requests.
type Options struct {
	Split bool        // stand-alone CM over a CoNDIS miniport instead of an MCM
	Mode  memdrv.Mode // how every driver answers pendable requests
	Quiet bool        // print the steps and checks, not every event
}

type story struct {
	w          io.Writer
	opts       Options
	m          *ndis.Mediator
	fab        *memdrv.Fabric
	adapter    *ndis.Adapter
	mcm        *memdrv.MCM
	cm         *memdrv.CM
	mp         *memdrv.Miniport
	alice      *memdrv.Client
	bob, carol *memdrv.Client
	violations []ndis.Violation
	step       int
	events     int
}

// Run tells the story on w.
func Run(w io.Writer, opts Options) error {
	s := &story{w: w, opts: opts, fab: memdrv.NewFabric()}
	s.m = ndis.New(ndis.Options{Name: "demo", Trace: s.event, OnViolation: func(v ndis.Violation) {
		s.violations = append(s.violations, v)
		fmt.Fprintf(w, "      !! contract violation: %v\n", v)
	}})
	topo := "integrated: clients on a miniport call manager (mcm)"
	if opts.Split {
		topo = "split: clients and a stand-alone call manager (cm) on a CoNDIS miniport (miniport)"
	}
	fmt.Fprintf(w, "condis demo — the CoNDIS mediator with in-memory drivers\n")
	fmt.Fprintf(w, "topology: %s; drivers answer requests %s\n", topo, describeMode(opts.Mode))
	fmt.Fprintf(w, "legend: A -> F(x) driver A calls NDIS function F;  A <- F(x) = S  F returned S;\n")
	fmt.Fprintf(w, "        A => H(x)  NDIS invokes A's handler H;   A <= H(x) = S  the handler returned S\n")
	for _, st := range []struct {
		title string
		run   func() error
	}{
		{"attach the adapter, register the Q.2931 address family, bind three clients (they open it)", s.setUp},
		{"bob registers SAP \"echo\", carol registers SAP \"news\"", s.registerSaps},
		{"alice calls bob (echo) with a flowspec; data both ways; bob hangs up (a remote close)", s.remoteClose},
		{"alice calls bob again and hangs up herself (a local close)", s.localClose},
		{"alice makes a point-to-multipoint call to bob, adds carol, sends to both, drops carol, closes", s.multipoint},
		{"the call manager withdraws the address family; everyone tears down; nothing is left", s.tearDown},
	} {
		s.step++
		fmt.Fprintf(w, "\n[%d] %s\n", s.step, st.title)
		if err := st.run(); err != nil {
			return fmt.Errorf("step %d (%s): %w", s.step, st.title, err)
		}
	}
	if len(s.violations) > 0 {
		return fmt.Errorf("%d contract violation(s); first: %v", len(s.violations), s.violations[0])
	}
	fmt.Fprintf(w, "\nevery step behaved as the CoNDIS contract says (%d mediator events).\n", s.events)
	return nil
}

func describeMode(m memdrv.Mode) string {
	switch m {
	case memdrv.Pend:
		return "by pending and completing later (NDIS_STATUS_PENDING, then Ndis*Complete)"
	case memdrv.PendEarly:
		return "by completing inside the handler and then returning NDIS_STATUS_PENDING"
	}
	return "at once (a final status from the handler)"
}

func (s *story) event(e ndis.Event) {
	s.events++
	if s.opts.Quiet {
		return
	}
	fmt.Fprintf(s.w, "      %s\n", e)
}

func (s *story) check(ok bool, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !ok {
		fmt.Fprintf(s.w, "   FAIL %s\n", msg)
		return fmt.Errorf("%s", msg)
	}
	fmt.Fprintf(s.w, "   ok   %s\n", msg)
	return nil
}

func (s *story) run() { s.fab.Run() }

func (s *story) setUp() error {
	var st ndis.Status
	if s.opts.Split {
		if s.mp, st = memdrv.NewMiniport(s.m, "miniport", s.fab); st != ndis.StatusSuccess {
			return fmt.Errorf("miniport: %v", st)
		}
		s.mp.SetMode(s.opts.Mode)
		s.adapter = s.mp.Adapter()
		if s.cm, st = memdrv.NewCM(s.m, "cm", s.adapter, s.fab); st != ndis.StatusSuccess {
			return fmt.Errorf("cm: %v", st)
		}
		s.cm.SetMode(s.opts.Mode)
	} else {
		if s.mcm, st = memdrv.NewMCM(s.m, "mcm", s.fab); st != ndis.StatusSuccess {
			return fmt.Errorf("mcm: %v", st)
		}
		s.mcm.SetMode(s.opts.Mode)
		s.adapter = s.mcm.Adapter()
	}
	s.run()
	for _, p := range []**memdrv.Client{&s.alice, &s.bob, &s.carol} {
		name := map[**memdrv.Client]string{&s.alice: "alice", &s.bob: "bob", &s.carol: "carol"}[p]
		c, st := memdrv.NewClient(s.m, name, s.adapter, s.fab)
		if st != ndis.StatusSuccess {
			return fmt.Errorf("bind %s: %v", name, st)
		}
		c.SetMode(s.opts.Mode)
		*p = c
		s.run()
	}
	for _, c := range []*memdrv.Client{s.alice, s.bob, s.carol} {
		a := c.Af()
		if err := s.check(a != nil && a.Open.Status == ndis.StatusSuccess && a.Open.ExactlyOnce(),
			"%s opened CO_ADDRESS_FAMILY_Q2931 3.1: %v", c.Name, a.Open); err != nil {
			return err
		}
	}
	return nil
}

func (s *story) registerSaps() error {
	b := s.bob.RegisterSap(s.bob.Af(), "echo")
	c := s.carol.RegisterSap(s.carol.Af(), "news")
	s.run()
	if err := s.check(b.Register.Status == ndis.StatusSuccess && b.Register.ExactlyOnce(), "bob's SAP echo: %v", b.Register); err != nil {
		return err
	}
	return s.check(c.Register.Status == ndis.StatusSuccess && c.Register.ExactlyOnce(), "carol's SAP news: %v", c.Register)
}

// flowspec is 1 Mbit/s guaranteed service with 9180-byte SDUs.
var flowspec = ndis.Flowspec{TokenRate: 125000, TokenBucketSize: 18360, PeakBandwidth: 250000,
	Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified, ServiceType: ndis.ServiceGuaranteed,
	MaxSduSize: 9180, MinimumPolicedSize: 64}

// call makes a point-to-point call from alice to service and checks it.
func (s *story) call(service string, callee *memdrv.Client) (*memdrv.ClientVc, *memdrv.ClientVc, error) {
	v, st := s.alice.CreateVc(s.alice.Af())
	if err := s.check(st == ndis.StatusSuccess, "alice created a VC for an outgoing call: %v", st); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(s.w, "   ..   flowspec both ways: %d B/s, bucket %d B, peak %d B/s, guaranteed, max SDU %d B\n",
		flowspec.TokenRate, flowspec.TokenBucketSize, flowspec.PeakBandwidth, flowspec.MaxSduSize)
	s.alice.MakeCall(v, memdrv.CallParams(service, flowspec, flowspec), false)
	s.run()
	if err := s.check(v.Make.Status == ndis.StatusSuccess && v.Make.ExactlyOnce(), "alice's MakeCall: %v", v.Make); err != nil {
		return nil, nil, err
	}
	in := callee.LastIncoming()
	if err := s.check(in != nil && in.Offered == 1 && in.Connected == 1, "%s was offered the call, accepted it and saw CallConnected", callee.Name); err != nil {
		return nil, nil, err
	}
	return v, in, nil
}

func (s *story) remoteClose() error {
	v, in, err := s.call("echo", s.bob)
	if err != nil {
		return err
	}
	s.alice.Send(v, []byte("hello bob"))
	s.bob.Send(in, []byte("hello alice"))
	s.run()
	if err := s.check(equal(in.RxData(), "hello bob") && equal(v.RxData(), "hello alice"),
		"data both ways: bob got %q, alice got %q", in.RxData(), v.RxData()); err != nil {
		return err
	}
	if err := s.check(len(v.SendStatus) == 1 && v.SendStatus[0] == ndis.StatusSuccess, "alice's send completed with %v", v.SendStatus); err != nil {
		return err
	}
	s.bob.CloseCall(in)
	s.run()
	if err := s.check(v.CloseIndicated == 1 && v.CloseStatus == ndis.StatusSuccess && v.Close.Status == ndis.StatusSuccess,
		"alice got IncomingCloseCall(%v) and answered with NdisClCloseCall: %v", v.CloseStatus, v.Close); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *story) deleteVc(v *memdrv.ClientVc) error {
	st := s.alice.DeleteVc(v)
	s.run()
	return s.check(st == ndis.StatusSuccess, "alice deleted her VC (the creator deletes): %v", st)
}

func (s *story) localClose() error {
	v, in, err := s.call("echo", s.bob)
	if err != nil {
		return err
	}
	s.alice.CloseCall(v)
	s.run()
	if err := s.check(v.Close.Status == ndis.StatusSuccess && v.Close.ExactlyOnce(), "alice's CloseCall: %v", v.Close); err != nil {
		return err
	}
	if err := s.check(in.CloseIndicated == 1 && in.CloseStatus == ndis.StatusSuccess && in.Deleted,
		"bob got IncomingCloseCall(%v), closed, and the call manager deleted its VC", in.CloseStatus); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *story) multipoint() error {
	v, st := s.alice.CreateVc(s.alice.Af())
	if err := s.check(st == ndis.StatusSuccess, "alice created a VC: %v", st); err != nil {
		return err
	}
	first, _ := s.alice.MakeCall(v, memdrv.CallParams("echo", flowspec, ndis.Flowspec{}), true)
	s.run()
	if err := s.check(v.Make.Status == ndis.StatusSuccess && first.H != nil, "multipoint MakeCall to bob: %v, first party %v", v.Make, first.H); err != nil {
		return err
	}
	second, _ := s.alice.AddParty(v, memdrv.CallParams("news", flowspec, ndis.Flowspec{}))
	s.run()
	if err := s.check(second.Add.Status == ndis.StatusSuccess && second.Add.ExactlyOnce(), "AddParty carol: %v", second.Add); err != nil {
		return err
	}
	bobIn, carolIn := s.bob.LastIncoming(), s.carol.LastIncoming()
	s.alice.Send(v, []byte("to all leaves"))
	s.run()
	if err := s.check(equal(bobIn.RxData(), "to all leaves") && equal(carolIn.RxData(), "to all leaves"),
		"one send on the root reached both leaves"); err != nil {
		return err
	}
	s.alice.DropParty(second)
	s.run()
	if err := s.check(second.Drop.Status == ndis.StatusSuccess && carolIn.CloseIndicated == 1,
		"DropParty carol: %v; carol saw IncomingCloseCall", second.Drop); err != nil {
		return err
	}
	s.alice.CloseCall(v)
	s.run()
	if err := s.check(v.Close.Status == ndis.StatusSuccess && bobIn.CloseIndicated == 1,
		"closing with the last party: %v; bob saw IncomingCloseCall", v.Close); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *story) tearDown() error {
	if s.mcm != nil {
		s.mcm.NotifyCloseAll()
	} else {
		s.cm.NotifyCloseAll()
	}
	s.run()
	for _, c := range []*memdrv.Client{s.alice, s.bob, s.carol} {
		if err := s.check(c.Af().Close.Status == ndis.StatusSuccess, "%s closed the AF after NotifyCloseAf: %v", c.Name, c.Af().Close); err != nil {
			return err
		}
		if err := s.check(c.Unbind() == ndis.StatusSuccess, "%s unbound", c.Name); err != nil {
			return err
		}
	}
	if s.cm != nil {
		st := ndis.StatusPending
		for i := 0; i < 10 && st == ndis.StatusPending; i++ {
			st = s.cm.Unbind()
			s.run()
		}
		if err := s.check(st == ndis.StatusSuccess, "cm deleted its signalling VC and unbound: %v", st); err != nil {
			return err
		}
	}
	if err := s.check(s.adapter.RemoveAdapter() == ndis.StatusSuccess, "adapter removed"); err != nil {
		return err
	}
	snap := s.m.Snapshot()
	return s.check(snap.Empty() && len(s.m.Audit()) == 0,
		"the mediator holds no AF, SAP, VC or pending operation (%d calls made, %d offered, %d VC-side closes)",
		snap.Counters.CallsMade, snap.Counters.CallsDispatched, snap.Counters.CallsClosed)
}

func equal(got [][]byte, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i], []byte(want[i])) {
			return false
		}
	}
	return true
}

// ParseMode reads a mode name: immediate, pend or pend-early.
func ParseMode(s string) (memdrv.Mode, error) {
	for _, m := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly} {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (immediate, pend or pend-early)", s)
}
