package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/quic"
	"github.com/condis-project/condis/uni"
)

// NetOptions tune the story on real nodes.
type NetOptions struct {
	Mode  memdrv.Mode // how the clients answer incoming calls and notify-close
	Quiet bool        // print the steps, checks and network events, not every mediator event
	// T309 is how long a node keeps a call whose link is lost before it
	// clears it (0: 2 s, shortened from the standard 10 s so the demo is
	// quick).
	T309 time.Duration
	// TraceDir, if set, is where the story's calls are drawn: TraceDir/calls.md
	// has a Mermaid sequence chart per call, the CoNDIS requests and handlers
	// of each node beside the Q.2931 messages (package ladder), and
	// TraceDir/NODE.pcapng each node's Q.2931 messages for Wireshark
	// (package capture). The directory is made if need be.
	TraceDir string

	afterBind func(*netStory) // tests: change a client's behaviour once the clients are bound
}

// Link supervision for the demo: a peer that goes silent is noticed after
// the QUIC idle timeout (keepalives every 250 ms keep a healthy link up).
const (
	demoIdle      = time.Second
	demoKeepalive = 250 * time.Millisecond
	stepLimit     = 15 * time.Second // the longest any step may wait
)

// netNode is one of the demo's nodes: a real condis node (mediator, Q.2931
// miniport call manager, QUIC endpoint with mutual TLS) and its clients.
type netNode struct {
	name string
	cfg  *node.Config
	n    *node.Node
	udp  *net.UDPConn // the node's socket; closing it cuts the node off
	fab  *memdrv.Fabric
	cls  []*memdrv.Client
}

type netStory struct {
	w     io.Writer
	opts  NetOptions
	start time.Time

	outMu      sync.Mutex // output and the records below come from many goroutines
	events     int
	violations []ndis.Violation
	received   []received        // the Q.2931 messages the nodes received
	calls      *ladder.Collector // with TraceDir: every node's events, for the charts
	steps      []time.Time       // when each step began

	// ddi are every node's mediator events of the call-manager and
	// miniport DDI (NdisCm*, NdisMCm*, MiniportCo*, NdisMCo*), for the
	// topology step's checks.
	ddi map[string][]ndis.Event

	dir                string
	alpha, beta, gamma *netNode
	alice, bob, carol  *memdrv.Client
	step               int
}

// RunNetwork tells the story on three real nodes in this process — alpha,
// beta and gamma, each with its own mediator and Q.2931 call manager,
// speaking QUIC with mutual TLS on 127.0.0.1 under throwaway certificates —
// with a client on each: alice on alpha, bob on beta, carol on gamma. It
// adds what only a network shows: calls refused by the far node, a
// multipoint call with leaves on two other nodes, and a node cut off.
func RunNetwork(w io.Writer, opts NetOptions) (err error) {
	if opts.T309 <= 0 {
		opts.T309 = 2 * time.Second
	}
	s := &netStory{w: w, opts: opts, start: time.Now(), ddi: map[string][]ndis.Event{}}
	if opts.TraceDir != "" {
		if err := os.MkdirAll(opts.TraceDir, 0o755); err != nil {
			return err
		}
		s.calls = ladder.NewCollector()
		// Drawn last, once the nodes are down, also when a step failed.
		defer func() { err = errors.Join(err, s.writeCalls(filepath.Join(opts.TraceDir, "calls.md"))) }()
	}
	s.dir, err = os.MkdirTemp("", "condis-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.dir)
	defer func() { err = errors.Join(err, s.shutDown()) }()

	fmt.Fprintf(w, "condis demo — three condis nodes in this process, speaking Q.2931 over QUIC with mutual TLS\n")
	fmt.Fprintf(w, "clients answer %s\n", describeMode(opts.Mode))
	fmt.Fprintf(w, "legend: NODE A -> F(x) driver A calls NDIS function F on NODE's mediator;  A <- F(x) = S  F returned S;\n")
	fmt.Fprintf(w, "        NODE A => H(x) the mediator invokes A's handler H;  A <= H(x) = S  the handler returned S;\n")
	fmt.Fprintf(w, "        NODE ~ >> PEER M  the node's call manager sent Q.2931 message M to PEER (<< received it);\n")
	fmt.Fprintf(w, "        NODE ~ call ...   what the call manager says of a call, and of its links\n")
	fmt.Fprintf(w, "        (handles such as vc#7 are per node; times are since the start)\n")
	for _, st := range []struct {
		title string
		run   func() error
	}{
		{"a throwaway CA and certificates; start alpha, beta and gamma on 127.0.0.1", s.startNodes},
		{"bind alice to alpha, bob to beta, carol to gamma (each opens the Q.2931 address family)", func() error {
			err := s.bindClients()
			if err == nil && opts.afterBind != nil {
				opts.afterBind(s)
			}
			return err
		}},
		{"bob registers SAP \"echo\" on beta; carol registers SAP \"news\" on gamma (only alpha may call it)", s.registerSaps},
		{"alice calls beta/echo with a flowspec; data both ways; bob hangs up (a remote close)", s.remoteClose},
		{"alice calls beta/echo again and hangs up herself (a local close)", s.localClose},
		{"alice calls gamma/news: gamma runs the split topology (a stand-alone call manager over a CoNDIS miniport, which pends); carol hangs up", s.splitCall},
		{"calls the far node refuses: no SAP matches (cause 88), and gamma's access list (cause 21)", s.refused},
		{"alice makes a point-to-multipoint call: leaves bob on beta and carol on gamma; drops carol; closes", s.multipoint},
		{"alice calls gamma/news; gamma is cut off (its socket closed, nothing sent)", s.cutOff},
	} {
		s.step++
		s.outMu.Lock()
		s.steps = append(s.steps, time.Now())
		s.outMu.Unlock()
		s.printf("\n[%d] %s\n", s.step, st.title)
		if err := st.run(); err != nil {
			return fmt.Errorf("step %d (%s): %w", s.step, st.title, err)
		}
	}
	s.step++
	s.printf("\n[%d] shut every node down: calls released, address family withdrawn, clients unbound\n", s.step)
	if err := s.shutDown(); err != nil {
		return fmt.Errorf("step %d (shut down): %w", s.step, err)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if len(s.violations) > 0 {
		return fmt.Errorf("%d contract violation(s); first: %v", len(s.violations), s.violations[0])
	}
	fmt.Fprintf(w, "\nevery step behaved as the CoNDIS contract and Q.2931 say (%d mediator events, %.1f s).\n",
		s.events, time.Since(s.start).Seconds())
	return nil
}

func (s *netStory) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

func (s *netStory) since() string {
	return fmt.Sprintf("%7.3fs", time.Since(s.start).Seconds())
}

func (s *netStory) check(ok bool, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !ok {
		s.printf("   FAIL %s\n", msg)
		return errors.New(msg)
	}
	s.printf("   ok   %s\n", msg)
	return nil
}

// nodes returns the nodes started so far.
func (s *netStory) nodes() []*netNode {
	var ns []*netNode
	for _, n := range []*netNode{s.alpha, s.beta, s.gamma} {
		if n != nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// wait runs every client's Loop until cond holds, or gives up after limit.
func (s *netStory) wait(what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for {
		for _, n := range s.nodes() {
			n.fab.Run()
		}
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			s.printf("   FAIL gave up after %v waiting for %s\n", limit, what)
			return fmt.Errorf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ---- the nodes ----

func (s *netStory) startNodes() error {
	if _, err := pki.InitCA(s.dir); err != nil {
		return err
	}
	names := []string{"alpha", "beta", "gamma"}
	socks := map[string]*net.UDPConn{}
	for _, name := range names {
		if _, err := pki.Issue(s.dir, name); err != nil {
			return err
		}
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		socks[name] = udp
	}
	for _, name := range names {
		var b strings.Builder
		// The control socket is configured but not served: the demo's clients
		// bind to the mediators directly.
		fmt.Fprintf(&b, "name = %q\nlisten = %q\ncontrol = %q\nca = %q\ncert = %q\nkey = %q\n", name, socks[name].LocalAddr().String(),
			filepath.Join(s.dir, name+".sock"),
			filepath.Join(s.dir, pki.CACertFile), filepath.Join(s.dir, name+".pem"), filepath.Join(s.dir, name+".key"))
		if name == "gamma" {
			// gamma runs the other topology: a stand-alone call manager over
			// a CoNDIS miniport whose medium is QUIC.
			fmt.Fprintf(&b, "topology = \"split\"\n")
		}
		for _, p := range names {
			if p != name {
				fmt.Fprintf(&b, "\n[[peer]]\nname = %q\naddress = %q\n", p, socks[p].LocalAddr().String())
			}
		}
		if name == "gamma" {
			fmt.Fprintf(&b, "\n[[sap]]\nservice = \"news\"\nallow = [\"alpha\"]\n")
		}
		file := filepath.Join(s.dir, name+".toml")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			return err
		}
		cfg, err := node.Load(file)
		if err != nil {
			socks[name].Close()
			return err
		}
		if s.opts.TraceDir != "" {
			// Every Q.2931 message of the node, for Wireshark.
			if cfg.Capture, err = filepath.Abs(filepath.Join(s.opts.TraceDir, name+".pcapng")); err != nil {
				socks[name].Close()
				return err
			}
		}
		nn := &netNode{name: name, cfg: cfg, udp: socks[name], fab: memdrv.NewFabric()}
		timers := uni.DefaultTimers()
		timers.T309 = s.opts.T309
		nn.n, err = node.Start(cfg, node.StartOptions{
			Endpoint: quic.Config{PacketConn: socks[name], IdleTimeout: demoIdle, KeepAlivePeriod: demoKeepalive},
			MCM:      mcm.Config{Timers: timers},
			// gamma's miniport pends every activation and deactivation, as
			// a NIC that programs its hardware asynchronously does.
			Miniport:    miniport.Config{Pend: true},
			Trace:       func(e ndis.Event) { s.event(name, e) },
			Tracer:      s.tracer(name),
			OnViolation: func(v ndis.Violation) { s.violation(name, v) },
		})
		if err != nil {
			socks[name].Close()
			return err
		}
		switch name {
		case "alpha":
			s.alpha = nn
		case "beta":
			s.beta = nn
		case "gamma":
			s.gamma = nn
		}
		s.printf("   ..   %s: %s, listening on %s, peers %s, %s\n", name, file, socks[name].LocalAddr(), strings.Join(peerNames(cfg), " and "), describeTopology(cfg))
	}
	s.printf("   ..   certificates from a fresh cluster CA in %s; each node's identity is the name in its certificate\n", s.dir)
	s.printf("   ..   link supervision: keepalive %v, idle timeout %v; T309 %v (shortened for the demo; the standard value is 10 s)\n",
		demoKeepalive, demoIdle, s.opts.T309)
	return s.check(len(s.nodes()) == 3 && s.gamma.n.Split != nil && s.alpha.n.MCM != nil && s.beta.n.MCM != nil,
		"three nodes up, each with a mediator and a Q.2931 call manager: alpha's and beta's integrated, gamma's split")
}

// describeTopology says how the node's call manager sits on the network.
func describeTopology(cfg *node.Config) string {
	if cfg.Topology == node.TopologySplit {
		return "split topology (stand-alone call manager over a CoNDIS miniport)"
	}
	return "integrated topology (miniport call manager)"
}

func peerNames(cfg *node.Config) []string {
	var ps []string
	for _, p := range cfg.Peers {
		ps = append(ps, p.Name)
	}
	return ps
}

// event prints one mediator event of node.
func (s *netStory) event(node string, e ndis.Event) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.events++
	if isCmDDI(e.Func) {
		s.ddi[node] = append(s.ddi[node], e)
	}
	if s.calls != nil {
		s.calls.Add(ladder.FromNDIS(node, time.Now(), e))
	}
	if !s.opts.Quiet {
		fmt.Fprintf(s.w, "   %s %-5s %s\n", s.since(), node, e)
	}
}

func (s *netStory) violation(node string, v ndis.Violation) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.violations = append(s.violations, v)
	fmt.Fprintf(s.w, "      !! %s: contract violation: %v\n", node, v)
}

// received is a Q.2931 message a node's call manager received.
type received struct {
	node  string
	t     uni.MsgType
	cause uni.Cause // the first Cause IE's, 0 if none
}

// tracer shows what node's call manager did on the network — the Q.2931
// messages it sent and received, its links coming and going, what became
// of its calls — as lines of the story, from the typed events of package
// trace, and keeps the messages received so the story can check their
// causes.
func (s *netStory) tracer(node string) trace.Tracer {
	return trace.Tracer{
		Signal: func(e trace.Signal) {
			var cause uni.Cause
			t, _, ok := e.Header()
			if m, err := e.Decode(); err == nil {
				cause, _ = m.Cause()
			}
			s.outMu.Lock()
			defer s.outMu.Unlock()
			if s.calls != nil {
				s.calls.Add(ladder.FromSignal(e))
			}
			dir := ">>"
			if e.Dir == trace.In {
				dir = "<<"
				if ok {
					s.received = append(s.received, received{node: node, t: t, cause: cause})
				}
			}
			fmt.Fprintf(s.w, "   %s %-5s ~ %s %-5s %s\n", s.since(), node, dir, e.Peer, ladder.SignalLabel(e))
		},
		Call: func(e trace.Call) {
			s.outMu.Lock()
			defer s.outMu.Unlock()
			if s.calls != nil {
				s.calls.Add(ladder.FromCall(e))
			}
			what := ladder.CallLabel(e)
			if e.VC != "" {
				what += " (" + e.VC + ")"
			}
			fmt.Fprintf(s.w, "   %s %-5s ~ %s\n", s.since(), node, what)
		},
		Link: func(e trace.Link) {
			s.outMu.Lock()
			defer s.outMu.Unlock()
			if s.calls != nil {
				s.calls.Add(ladder.FromLink(e))
			}
			fmt.Fprintf(s.w, "   %s %-5s ~ %s\n", s.since(), node, ladder.LinkLabel(e))
		},
	}
}

// receivedWith reports whether node's call manager received a message of
// type t carrying cause.
func (s *netStory) receivedWith(node string, t uni.MsgType, cause uni.Cause) bool {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	for _, r := range s.received {
		if r == (received{node, t, cause}) {
			return true
		}
	}
	return false
}

// writeCalls draws every call of the story in file: a Mermaid sequence
// chart each, under a heading naming its step.
func (s *netStory) writeCalls(file string) error {
	s.outMu.Lock()
	ls, steps := s.calls.Ladders(), s.steps
	s.outMu.Unlock()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# The calls of the condis demo\n\n")
	fmt.Fprintf(w, "Each call of `condis demo` as a sequence chart, both layers side by side: on each node, the\n")
	fmt.Fprintf(w, "client's CoNDIS requests and the handlers NDIS (the node's mediator) invokes — a solid arrow a\n")
	fmt.Fprintf(w, "call, a dashed one its return — and the Q.2931 messages the node's call manager (MCM)\n")
	fmt.Fprintf(w, "exchanges with the other nodes, each drawn once, from sender to receiver. Notes are what a call\n")
	fmt.Fprintf(w, "manager says of the call and of its links. Handles such as vc#4 are per node.\n\n")
	for i, l := range ls {
		step := 0
		for j, at := range steps {
			if !l.Events[0].Time.Before(at) {
				step = j + 1
			}
		}
		fmt.Fprintf(w, "## %d. %s\n\nStep %d of the story.\n\n```mermaid\n", i+1, l.Title(), step)
		if err := l.WriteMermaid(w); err != nil {
			f.Close()
			return err
		}
		fmt.Fprintf(w, "```\n\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.printf("\n%d calls drawn in %s; each node's Q.2931 messages in %s\n", len(ls), file,
		filepath.Join(filepath.Dir(file), "{alpha,beta,gamma}.pcapng"))
	return nil
}

// ---- the clients ----

func (s *netStory) bindClients() error {
	for _, b := range []struct {
		n    *netNode
		name string
		c    **memdrv.Client
	}{{s.alpha, "alice", &s.alice}, {s.beta, "bob", &s.bob}, {s.gamma, "carol", &s.carol}} {
		c, st := memdrv.NewClient(b.n.n.Mediator, b.name, b.n.n.CM.Adapter(), b.n.fab)
		if st != ndis.StatusSuccess {
			return fmt.Errorf("bind %s: %v", b.name, st)
		}
		c.Sap = q2931.ServiceSap // the Q.2931 call manager's SAP format: a service name
		c.SetMode(s.opts.Mode)
		b.n.cls = append(b.n.cls, c)
		*b.c = c
	}
	for _, c := range []*memdrv.Client{s.alice, s.bob, s.carol} {
		if err := s.wait(c.Name+" opening the AF", stepLimit, func() bool {
			a := c.Af()
			return a != nil && memdrv.See(c, func() bool { return a.Open.Done })
		}); err != nil {
			return err
		}
		a := c.Af()
		r := memdrv.See(c, func() memdrv.Result { return a.Open })
		if err := s.check(r.Status == ndis.StatusSuccess && r.ExactlyOnce(), "%s opened CO_ADDRESS_FAMILY_Q2931 3.1: %v", c.Name, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *netStory) registerSaps() error {
	for _, r := range []struct {
		c       *memdrv.Client
		service string
	}{{s.bob, "echo"}, {s.carol, "news"}} {
		sap := r.c.RegisterSap(r.c.Af(), r.service)
		if err := s.wait("SAP "+r.service, stepLimit, func() bool { return memdrv.See(r.c, func() bool { return sap.Register.Done }) }); err != nil {
			return err
		}
		res := memdrv.See(r.c, func() memdrv.Result { return sap.Register })
		if err := s.check(res.Status == ndis.StatusSuccess && res.ExactlyOnce(), "%s's SAP %s: %v", r.c.Name, r.service, res); err != nil {
			return err
		}
	}
	return nil
}

// ---- calls ----

// netFlowspec is 1 Mbit/s guaranteed service with SDUs of up
// to 1,000 bytes, which fit a QUIC datagram (a larger SDU needs a reliable
// VC, carried on a stream).
var netFlowspec = ndis.Flowspec{TokenRate: 125000, TokenBucketSize: 18360, PeakBandwidth: 250000,
	Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified, ServiceType: ndis.ServiceGuaranteed,
	MaxSduSize: 1000, MinimumPolicedSize: 64}

// makeCall makes a call from alice with params and waits for its outcome.
func (s *netStory) makeCall(params *ndis.CallParameters, multipoint bool) (*memdrv.ClientVc, *memdrv.ClientParty, memdrv.Result, error) {
	v, st := s.alice.CreateVc(s.alice.Af())
	if err := s.check(st == ndis.StatusSuccess, "alice created a VC for an outgoing call: %v", st); err != nil {
		return nil, nil, memdrv.Result{}, err
	}
	p, _ := s.alice.MakeCall(v, params, multipoint)
	if err := s.wait("MakeCallComplete", stepLimit, func() bool { return memdrv.See(s.alice, func() bool { return v.Make.Done }) }); err != nil {
		return nil, nil, memdrv.Result{}, err
	}
	r := memdrv.See(s.alice, func() memdrv.Result { return v.Make })
	if !r.ExactlyOnce() {
		return nil, nil, r, s.check(false, "alice's MakeCall finished exactly once: %v", r)
	}
	return v, p, r, nil
}

// connected waits for callee's n-th incoming call to be connected.
func (s *netStory) connected(callee *memdrv.Client, n int) (*memdrv.ClientVc, error) {
	if err := s.wait(callee.Name+"'s CallConnected", stepLimit, func() bool {
		in := callee.Incoming()
		return len(in) >= n && memdrv.See(callee, func() bool { return in[n-1].Connected == 1 })
	}); err != nil {
		return nil, err
	}
	in := callee.Incoming()[n-1]
	ok := memdrv.See(callee, func() bool { return in.Offered == 1 && in.Connected == 1 })
	return in, s.check(ok, "%s was offered the call, accepted it and saw CallConnected", callee.Name)
}

// call makes a point-to-point call from alice to dest and waits until both
// ends are up.
func (s *netStory) call(nodeName, service string, callee *memdrv.Client) (*memdrv.ClientVc, *memdrv.ClientVc, error) {
	s.printf("   ..   flowspec both ways: %d B/s, bucket %d B, peak %d B/s, guaranteed, max SDU %d B\n",
		netFlowspec.TokenRate, netFlowspec.TokenBucketSize, netFlowspec.PeakBandwidth, netFlowspec.MaxSduSize)
	before := len(callee.Incoming())
	v, _, r, err := s.makeCall(q2931.CallParams(nodeName, service, netFlowspec, netFlowspec, false), false)
	if err != nil {
		return nil, nil, err
	}
	if err := s.check(r.Status == ndis.StatusSuccess, "alice's MakeCall to %s/%s: %v", nodeName, service, r); err != nil {
		return nil, nil, err
	}
	in, err := s.connected(callee, before+1)
	return v, in, err
}

// closedBy waits until the network closed v's call for c and c answered
// with its own CloseCall; the close must carry want.
func (s *netStory) closedBy(c *memdrv.Client, v *memdrv.ClientVc, want ndis.Status, limit time.Duration) error {
	if err := s.wait(c.Name+"'s IncomingCloseCall", limit, func() bool {
		return memdrv.See(c, func() bool { return v.CloseIndicated > 0 && v.Close.Done })
	}); err != nil {
		return err
	}
	n, st, r := 0, ndis.Status(0), memdrv.Result{}
	c.Locked(func() { n, st, r = v.CloseIndicated, v.CloseStatus, v.Close })
	return s.check(n == 1 && st == want && r.Status == ndis.StatusSuccess && r.ExactlyOnce(),
		"%s got IncomingCloseCall(%v) and answered with NdisClCloseCall: %v", c.Name, st, r)
}

// deleted waits until the call manager deleted the callee's VC in.
func (s *netStory) deleted(c *memdrv.Client, in *memdrv.ClientVc) error {
	if err := s.wait(c.Name+"'s VC deleted", stepLimit, func() bool { return memdrv.See(c, func() bool { return in.Deleted }) }); err != nil {
		return err
	}
	return s.check(true, "the call manager on %s's node deleted the VC it created for the incoming call", c.Name)
}

func (s *netStory) deleteVc(v *memdrv.ClientVc) error {
	st := s.alice.DeleteVc(v)
	return s.check(st == ndis.StatusSuccess, "alice deleted her VC (the creator deletes): %v", st)
}

func (s *netStory) remoteClose() error {
	v, in, err := s.call("beta", "echo", s.bob)
	if err != nil {
		return err
	}
	s.alice.Send(v, []byte("hello bob"))
	s.bob.Send(in, []byte("hello alice"))
	if err := s.wait("data both ways", stepLimit, func() bool { return len(in.RxData()) >= 1 && len(v.RxData()) >= 1 }); err != nil {
		return err
	}
	if err := s.check(equal(in.RxData(), "hello bob") && equal(v.RxData(), "hello alice"),
		"data both ways as QUIC datagrams: bob got %q, alice got %q", in.RxData(), v.RxData()); err != nil {
		return err
	}
	sent := memdrv.See(s.alice, func() []ndis.Status { return append([]ndis.Status(nil), v.SendStatus...) })
	if err := s.check(len(sent) == 1 && sent[0] == ndis.StatusSuccess, "alice's send completed with %v", sent); err != nil {
		return err
	}
	s.bob.CloseCall(in)
	if err := s.closedBy(s.alice, v, ndis.StatusSuccess, stepLimit); err != nil {
		return err
	}
	if err := s.check(s.receivedWith("alpha", uni.MsgRelease, uni.CauseNormalCallClearing),
		"alpha's call manager received RELEASE with cause 16, normal call clearing → NDIS_STATUS_SUCCESS"); err != nil {
		return err
	}
	if err := s.deleted(s.bob, in); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *netStory) localClose() error {
	v, in, err := s.call("beta", "echo", s.bob)
	if err != nil {
		return err
	}
	s.alice.CloseCall(v)
	if err := s.wait("alice's CloseCallComplete", stepLimit, func() bool { return memdrv.See(s.alice, func() bool { return v.Close.Done }) }); err != nil {
		return err
	}
	r := memdrv.See(s.alice, func() memdrv.Result { return v.Close })
	if err := s.check(r.Status == ndis.StatusSuccess && r.ExactlyOnce(), "alice's CloseCall: %v", r); err != nil {
		return err
	}
	if err := s.closedBy(s.bob, in, ndis.StatusSuccess, stepLimit); err != nil {
		return err
	}
	if err := s.deleted(s.bob, in); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *netStory) refused() error {
	carolBefore := len(s.carol.Incoming())
	v, _, r, err := s.makeCall(q2931.CallParams("beta", "nosuch", netFlowspec, netFlowspec, false), false)
	if err != nil {
		return err
	}
	if err := s.check(r.Status == ndis.StatusInvalidSap && s.receivedWith("alpha", uni.MsgReleaseComplete, uni.CauseIncompatibleDestination),
		"alpha/alice → beta/nosuch: beta answered RELEASE COMPLETE with cause 88 (incompatible destination); alice's MakeCall: %v", r); err != nil {
		return err
	}
	if err := s.deleteVc(v); err != nil {
		return err
	}
	// bob, on beta, calls gamma's news: not on its allow list.
	bv, st := s.bob.CreateVc(s.bob.Af())
	if err := s.check(st == ndis.StatusSuccess, "bob created a VC for an outgoing call: %v", st); err != nil {
		return err
	}
	s.bob.MakeCall(bv, q2931.CallParams("gamma", "news", netFlowspec, netFlowspec, false), false)
	if err := s.wait("bob's MakeCallComplete", stepLimit, func() bool { return memdrv.See(s.bob, func() bool { return bv.Make.Done }) }); err != nil {
		return err
	}
	r = memdrv.See(s.bob, func() memdrv.Result { return bv.Make })
	if err := s.check(r.Status == ndis.StatusFailure && r.ExactlyOnce() && s.receivedWith("beta", uni.MsgReleaseComplete, uni.CauseCallRejected),
		"beta/bob → gamma/news: gamma's [[sap]] allow list refused it with cause 21 (call rejected); bob's MakeCall: %v", r); err != nil {
		return err
	}
	st = s.bob.DeleteVc(bv)
	return s.check(st == ndis.StatusSuccess && len(s.carol.Incoming()) == carolBefore, "bob deleted his VC; carol was never offered either call: %v", st)
}

func (s *netStory) multipoint() error {
	none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	bobBefore, carolBefore := len(s.bob.Incoming()), len(s.carol.Incoming())
	v, _, r, err := s.makeCall(q2931.CallParams("beta", "echo", netFlowspec, none, false), true)
	if err != nil {
		return err
	}
	if err := s.check(r.Status == ndis.StatusSuccess, "multipoint MakeCall, first party bob on beta: %v", r); err != nil {
		return err
	}
	second, _ := s.alice.AddParty(v, q2931.CallParams("gamma", "news", netFlowspec, none, false))
	if err := s.wait("AddParty", stepLimit, func() bool { return memdrv.See(s.alice, func() bool { return second.Add.Done }) }); err != nil {
		return err
	}
	r = memdrv.See(s.alice, func() memdrv.Result { return second.Add })
	if err := s.check(r.Status == ndis.StatusSuccess && r.ExactlyOnce(), "AddParty carol on gamma: %v", r); err != nil {
		return err
	}
	bobIn, err := s.connected(s.bob, bobBefore+1)
	if err != nil {
		return err
	}
	carolIn, err := s.connected(s.carol, carolBefore+1)
	if err != nil {
		return err
	}
	s.alice.Send(v, []byte("to all leaves"))
	if err := s.wait("both leaves receive", stepLimit, func() bool { return len(bobIn.RxData()) >= 1 && len(carolIn.RxData()) >= 1 }); err != nil {
		return err
	}
	if err := s.check(equal(bobIn.RxData(), "to all leaves") && equal(carolIn.RxData(), "to all leaves"),
		"one send on the root reached both leaves, on two other nodes"); err != nil {
		return err
	}
	s.alice.DropParty(second)
	if err := s.wait("DropParty", stepLimit, func() bool { return memdrv.See(s.alice, func() bool { return second.Drop.Done }) }); err != nil {
		return err
	}
	r = memdrv.See(s.alice, func() memdrv.Result { return second.Drop })
	if err := s.check(r.Status == ndis.StatusSuccess && r.ExactlyOnce(), "DropParty carol: %v", r); err != nil {
		return err
	}
	if err := s.closedBy(s.carol, carolIn, ndis.StatusSuccess, stepLimit); err != nil {
		return err
	}
	s.alice.CloseCall(v)
	if err := s.wait("CloseCall", stepLimit, func() bool { return memdrv.See(s.alice, func() bool { return v.Close.Done }) }); err != nil {
		return err
	}
	r = memdrv.See(s.alice, func() memdrv.Result { return v.Close })
	if err := s.check(r.Status == ndis.StatusSuccess && r.ExactlyOnce(), "closing with the last party: %v", r); err != nil {
		return err
	}
	if err := s.closedBy(s.bob, bobIn, ndis.StatusSuccess, stepLimit); err != nil {
		return err
	}
	return s.deleteVc(v)
}

func (s *netStory) cutOff() error {
	v, in, err := s.call("gamma", "news", s.carol)
	if err != nil {
		return err
	}
	s.printf("   ..   %s: gamma's UDP socket is closed — no RELEASE, no QUIC CONNECTION_CLOSE reaches alpha\n", s.since())
	cut := time.Now()
	if err := s.gamma.udp.Close(); err != nil {
		return err
	}
	if err := s.closedBy(s.alice, v, ndis.StatusDestOutOfOrder, demoIdle+s.opts.T309+stepLimit); err != nil {
		return err
	}
	took := time.Since(cut)
	if err := s.check(took >= s.opts.T309,
		"alice was told %.1f s after the cut: the link loss noticed (idle timeout %v), then T309 (%v) expired without the link coming back",
		took.Seconds(), demoIdle, s.opts.T309); err != nil {
		return err
	}
	if err := s.closedBy(s.carol, in, ndis.StatusDestOutOfOrder, demoIdle+s.opts.T309+stepLimit); err != nil {
		return err
	}
	if err := s.deleted(s.carol, in); err != nil {
		return err
	}
	return s.deleteVc(v)
}

// ---- the end ----

// shutDown closes every node the way `condis node` does on SIGTERM: the
// call manager releases what is left and withdraws the address family, the
// clients close it and unbind; then every mediator must be empty. It runs
// once; later calls return nil.
func (s *netStory) shutDown() error {
	ns := s.nodes()
	s.alpha, s.beta, s.gamma = nil, nil, nil
	var live []*netNode
	for _, n := range ns {
		if n.n == nil {
			n.udp.Close()
			continue
		}
		live = append(live, n)
	}
	if len(live) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepLimit)
	defer cancel()
	errs := make(chan error, len(live))
	for _, n := range live {
		go func() { errs <- n.n.Close(ctx) }()
	}
	var err error
	for _, n := range live {
		for _, c := range n.cls {
			werr := waitRunning(live, ctx, func() bool {
				a := c.Af()
				return a == nil || memdrv.See(c, func() bool { return a.Close.Done })
			})
			if werr != nil {
				err = errors.Join(err, fmt.Errorf("%s/%s did not close its AF: %w", n.name, c.Name, werr))
				continue
			}
			if a := c.Af(); a != nil {
				r := memdrv.See(c, func() memdrv.Result { return a.Close })
				err = errors.Join(err, s.check(r.Status == ndis.StatusSuccess, "%s closed the AF after NotifyCloseAf: %v", c.Name, r))
			}
			err = errors.Join(err, s.check(c.Unbind() == ndis.StatusSuccess, "%s unbound from %s", c.Name, n.name))
		}
	}
	for range live {
		var cerr error
		if werr := waitRunning(live, ctx, func() bool {
			select {
			case cerr = <-errs:
				return true
			default:
				return false
			}
		}); werr != nil {
			return errors.Join(err, fmt.Errorf("a node did not shut down: %w", werr))
		}
		if cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	for _, n := range live {
		snap := n.n.Mediator.Snapshot()
		err = errors.Join(err, s.check(snap.Empty() && len(snap.Adapters) == 0 && len(n.n.Mediator.Audit()) == 0,
			"%s's mediator holds no adapter, AF, SAP, VC or pending operation (%d calls made, %d offered)",
			n.name, snap.Counters.CallsMade, snap.Counters.CallsDispatched))
	}
	return err
}

// waitRunning runs the nodes' client Loops until cond holds or ctx ends.
func waitRunning(ns []*netNode, ctx context.Context, cond func() bool) error {
	for {
		for _, n := range ns {
			n.fab.Run()
		}
		if cond() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// ---- the two topologies ----

// isCmDDI reports whether fn is a function of the call-manager or
// miniport DDI, whose events the topology step reads.
func isCmDDI(fn string) bool {
	for _, p := range []string{"NdisCm", "NdisMCm", "ProtocolCm", "MiniportCo", "NdisMCo"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// splitCall is a call from alpha (integrated) to gamma (split) with data
// both ways, closed by carol on gamma; then it shows the call as each
// node's mediator saw it — the NdisMCm* path on alpha, and on gamma
// NdisCmActivateVc, which gamma's miniport pends (MiniportCoActivateVc
// PENDING, NdisMCoActivateVcComplete), and NdisCmCloseCallComplete only
// after the miniport's pended deactivation — and checks gamma's order.
func (s *netStory) splitCall() error {
	v, in, err := s.call("gamma", "news", s.carol)
	if err != nil {
		return err
	}
	s.alice.Send(v, []byte("hello carol"))
	s.carol.Send(in, []byte("hello alice"))
	if err := s.wait("data both ways", stepLimit, func() bool { return len(in.RxData()) >= 1 && len(v.RxData()) >= 1 }); err != nil {
		return err
	}
	if err := s.check(equal(in.RxData(), "hello carol") && equal(v.RxData(), "hello alice"),
		"data both ways: between alpha's MCM and gamma's miniport (carol's sends go to the miniport, not the call manager)"); err != nil {
		return err
	}
	s.carol.CloseCall(in)
	if err := s.closedBy(s.alice, v, ndis.StatusSuccess, stepLimit); err != nil {
		return err
	}
	if err := s.deleted(s.carol, in); err != nil {
		return err
	}
	if err := s.deleteVc(v); err != nil {
		return err
	}
	s.outMu.Lock()
	alpha, gamma := chain(s.ddi["alpha"], v.H.String()), chain(s.ddi["gamma"], in.H.String())
	s.outMu.Unlock()
	s.printf("   ..   the call on alpha (integrated, %s): %s\n", v.H, strings.Join(alpha, " → "))
	s.printf("   ..   the call on gamma (split, %s):      %s\n", in.H, strings.Join(gamma, " → "))
	want := []string{"NdisCmActivateVc", "MiniportCoActivateVc = PENDING", "NdisMCoActivateVcComplete", "ProtocolCmActivateVcComplete",
		"NdisCmDispatchIncomingCall", "ProtocolCmCloseCall", "NdisCmDeactivateVc", "MiniportCoDeactivateVc = PENDING",
		"NdisMCoDeactivateVcComplete", "ProtocolCmDeactivateVcComplete", "NdisCmCloseCallComplete"}
	return s.check(isSubsequence(want, gamma),
		"on gamma, in this order: %s", strings.Join(want, " → "))
}

// chain is the call-manager and miniport DDI of one VC as a node's
// mediator saw it, in order: each request and handler once, with the
// status when it pended.
func chain(events []ndis.Event, vc string) []string {
	var out []string
	for _, e := range events {
		if e.Object != vc {
			continue
		}
		switch e.Kind {
		case ndis.EventRequest, ndis.EventUpcall:
			out = append(out, e.Func)
		case ndis.EventReturn, ndis.EventHandled:
			if e.Status != ndis.StatusPending {
				break
			}
			// Mark the latest call of the function: a completion from
			// another goroutine may be traced before the PENDING return is.
			for i := len(out) - 1; i >= 0; i-- {
				if out[i] == e.Func {
					out[i] += " = PENDING"
					break
				}
			}
		}
	}
	return out
}

// isSubsequence reports whether want appears in got in order (not
// necessarily next to each other), each element of want the start of one
// of got ("NdisCmDispatchIncomingCall" matches its "= PENDING" too).
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.HasPrefix(g, want[i]) {
			i++
		}
	}
	return i == len(want)
}
