package mcm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/internal/pacing"
	"github.com/condis-project/condis/internal/spawn"
	"github.com/condis-project/condis/internal/statewait"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// Defaults of Config.
const (
	DefaultMaxShapingDelay = 100 * time.Millisecond
	DefaultRefusalRate     = pacing.DefaultRefusalRate
	DefaultAdapterName     = "mcm"
)

// Config configures an MCM.
type Config struct {
	// Name is this node's name (pki.ValidName); it must be the name the
	// transport endpoint authenticates. Required.
	Name string
	// AdapterName names the MCM's adapter in the mediator (default "mcm").
	AdapterName string
	// Endpoint reaches the peers. It may be set later with Attach, when the
	// endpoint needs the MCM's Handler to be created.
	Endpoint transport.Endpoint
	// Policy is how the MCM deals with its peers: their addresses (the
	// node's own is under Policy.AddressPrefix, see Address) and the
	// admission rules (Authorize, Trusts, MaxRate).
	callctl.Policy
	// Timers are the Q.2931 timer values; zero fields take the UNI 3.1
	// defaults (uni.DefaultTimers).
	Timers uni.Timers
	// MaxShapingDelay bounds how long a nonconforming SDU is held back to
	// make it conform to the VC's transmit flowspec (default 100 ms). An
	// SDU that would need longer is dropped and completed with
	// NDIS_STATUS_RESOURCES.
	MaxShapingDelay time.Duration
	// DialTimeout bounds one attempt to reach a peer (default 2×T303).
	DialTimeout time.Duration
	// RefusalRate is how many of a peer's calls (SETUP, ADD PARTY) a
	// second this node refuses before it reads that peer's signalling
	// more slowly: at this rate, so that QUIC flow control holds the peer
	// back (default DefaultRefusalRate; a burst of as many is free). A
	// peer that floods the node with calls it will not take costs it
	// little and slows nobody else down.
	RefusalRate int
	// Logger receives link and call events; nil discards them.
	Logger *slog.Logger
	// Tracer receives the MCM's typed events: every Q.2931 message sent
	// and received, links up and down, calls offered, refused,
	// connected, failed and released, and every change of a VC's call
	// state (see package trace). Hooks are
	// called with the MCM's lock held at times: they must not call the
	// MCM or block.
	Tracer trace.Tracer
}

// MCM is a miniport call manager for CO_ADDRESS_FAMILY_Q2931: CoNDIS calls
// on one side, Q.2931 / UNI 3.1 signalling over a transport.Endpoint on the
// other. See the package documentation.
type MCM struct {
	// Handlers answer the call-manager upcalls every call manager answers
	// alike (the call control's); mcm/cm.go has the others.
	callctl.Handlers

	m    *ndis.Mediator
	a    *ndis.Adapter
	core *callctl.Core // the call control: every call-control request to the mediator goes through its CM
	// illegalMoves counts transitions callctl.State does not draw (each
	// is logged); the package's tests fail on any.
	illegalMoves atomic.Uint64
	cfg          Config
	name         string
	addr         uni.AESA
	log          *slog.Logger
	timers       uni.Timers
	ctx          context.Context // cancelled by Shutdown: dials stop
	cancel       context.CancelFunc
	goroutines   spawn.Group // dial loops, shapers, kicked drainers, delayed deletions: Shutdown waits for them

	// mu guards everything below, every peer's uni.Link, Scheduler and
	// call records, and the call state of every vc and party. It is never
	// held while the mediator or the transport is called.
	mu       sync.Mutex
	turns    pacing.Turnstile // received signalling: the links take turns (see Messages)
	ep       transport.Endpoint
	peers    map[string]*peer
	detached bool // Shutdown finished: transport events are ignored
	halted   bool // the adapter is removed

	totals dataTotals // every VC's data counters, summed (Totals)
}

// New attaches a miniport call manager to m and registers the Q.2931
// address family, version 3.1, from its MiniportInitializeEx
// (NdisMCmRegisterAddressFamilyEx).
func New(m *ndis.Mediator, cfg Config) (*MCM, error) {
	if err := pki.ValidName(cfg.Name); err != nil {
		return nil, fmt.Errorf("mcm: %w", err)
	}
	if cfg.AdapterName == "" {
		cfg.AdapterName = DefaultAdapterName
	}
	if cfg.MaxShapingDelay <= 0 {
		cfg.MaxShapingDelay = DefaultMaxShapingDelay
	}
	if cfg.RefusalRate <= 0 {
		cfg.RefusalRate = DefaultRefusalRate
	}
	if err := cfg.checkAddressing(); err != nil {
		return nil, err
	}
	d := &MCM{m: m, cfg: cfg, name: cfg.Name, addr: q2931.Address(cfg.AddressPrefix, cfg.Name), log: cfg.Logger,
		peers: map[string]*peer{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("node", cfg.Name)
	d.timers = uni.NewLink(uni.Config{Timers: cfg.Timers}).Timers()
	moves := callctl.Transitions{Node: cfg.Name, Trace: cfg.Tracer.VcState,
		Illegal: func(h *ndis.Vc, from, to callctl.State, why callctl.Reason) {
			name := "(new)"
			if h != nil {
				name = h.String()
			}
			d.log.Error("call control: a VC moved where its state machine has no arrow", "vc", name, "from", from.String(), "to", to.String(), "reason", why.String())
			d.illegalMoves.Add(1)
		}}
	d.core = callctl.NewCore((*owner)(d), &d.mu, callctl.Config{Name: cfg.Name, Address: d.addr,
		Policy: cfg.Policy, Tracer: cfg.Tracer, Logger: d.log, Moves: moves})
	d.Handlers = d.core.Handlers()
	if d.cfg.DialTimeout <= 0 {
		d.cfg.DialTimeout = 2 * d.timers.T303
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	a, st := m.AddMiniportCallManager(cfg.AdapterName, d, d, func(a *ndis.Adapter) ndis.Status {
		d.a, d.core.CM = a, callctl.MCm{A: a}
		return a.MCmRegisterAddressFamilyEx(q2931.AF)
	})
	if st != ndis.StatusSuccess {
		d.cancel()
		return nil, fmt.Errorf("mcm: attaching the adapter: %w", st)
	}
	d.a, d.core.CM = a, callctl.MCm{A: a}
	if cfg.Endpoint != nil {
		d.Attach(cfg.Endpoint)
	}
	return d, nil
}

// Adapter returns the MCM's adapter handle, for clients to bind to.
func (d *MCM) Adapter() *ndis.Adapter { return d.a }

// Name returns the node name.
func (d *MCM) Name() string { return d.name }

// Address returns this node's ATM End System Address (see Address).
func (d *MCM) Address() uni.AESA { return d.addr }

// Handler returns the transport.Handler to give the endpoint (quic.Config
// Handler, sim.Network.Endpoint). Links that come up before Attach are
// served too.
func (d *MCM) Handler() transport.Handler { return handler{d} }

// Attach sets the endpoint the MCM dials peers with. Call it once, before
// any call is made to another node.
func (d *MCM) Attach(ep transport.Endpoint) {
	d.mu.Lock()
	d.ep = ep
	d.mu.Unlock()
}

// goLocked starts f on a goroutine Shutdown waits for.
func (d *MCM) goLocked(f func()) { d.spawn(f) }

// spawn starts f on a goroutine Shutdown waits for, unless Shutdown is
// over; it reports whether it did.
func (d *MCM) spawn(f func()) bool { return d.goroutines.Go(f) }

// Cause returns the Q.2931 cause with which the network ended or refused
// the last call on vc: the cause of the RELEASE or RELEASE COMPLETE
// received, or of the MCM's own clearing (27 once T309 ran out, 102 when
// the peer never answered). It is there from the MakeCallComplete or
// IncomingCloseCall that reports the end until vc is deleted or makes
// another call; ok is false for calls that ended without a cause (a
// local close) or that were never signalled. Tools show it next to the
// NDIS status, which several causes share.
func (d *MCM) Cause(vc *ndis.Vc) (c uni.Cause, ok bool) { return d.core.Cause(vc) }

// Shutdown takes the MCM down: no new calls are accepted; every call is
// released with normal clearing (cause 16, so peers' clients see
// NDIS_STATUS_SUCCESS); every AF open is withdrawn
// (NdisMCmNotifyCloseAddressFamily), which makes each client close its
// calls, deregister its SAPs and close the AF; once every AF open is closed
// and every VC the MCM created is deleted, and every protocol bound to the
// adapter has unbound (NdisCloseAdapterEx), the adapter is halted
// (MiniportHaltEx: RemoveAdapter). Shutdown waits for all of that, and for
// every goroutine of the MCM, until ctx ends; it then returns ctx's error.
// The transport endpoint is left to its owner; after Shutdown the MCM
// ignores it. Calling Shutdown again waits for the same end; once the
// adapter is halted it returns nil at once.
func (d *MCM) Shutdown(ctx context.Context) error {
	if err := d.core.ClearAll(ctx); err != nil {
		return fmt.Errorf("mcm: shutdown: calls, VCs or q2931.AF opens remain: %w", err)
	}
	d.cancel()
	unbound := func() bool { return d.a.Bound() == 0 }
	if err := statewait.Poll(ctx, 2*time.Millisecond, unbound); err != nil {
		return fmt.Errorf("mcm: shutdown: protocols still bound to the adapter: %w", err)
	}
	d.mu.Lock()
	d.detached = true
	d.mu.Unlock()
	d.goroutines.Stop()
	d.mu.Lock()
	halted := d.halted
	d.halted = true
	d.mu.Unlock()
	if halted {
		return nil
	}
	if st := d.a.RemoveAdapter(); st != ndis.StatusSuccess {
		return fmt.Errorf("mcm: halting the adapter: %w", st)
	}
	return nil
}
