package cm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/condis-project/condis/internal/pacing"
	"github.com/condis-project/condis/internal/spawn"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// DefaultBindingName is the name the CM binds to the miniport with.
const DefaultBindingName = "cm"

// Config configures a CM.
type Config struct {
	// Name is this node's name (pki.ValidName): the name the miniport's
	// transport endpoint authenticates. Required.
	Name string
	// BindingName names the CM's binding in the mediator (default "cm").
	BindingName string
	// Adapter is the CoNDIS miniport's adapter to bind to
	// (miniport.Miniport.Adapter). Required.
	Adapter *ndis.Adapter
	// Policy is how the CM deals with its peers: their addresses and the
	// admission rules, as in mcm.Config.
	callctl.Policy
	// Timers are the Q.2931 timer values; zero fields take the UNI 3.1
	// defaults.
	Timers uni.Timers
	// RefusalRate is how many of a peer's calls (SETUP, ADD PARTY) a
	// second the CM refuses before it takes that peer's signalling more
	// slowly: at this rate, so that the miniport's delivery of that link
	// waits, and the transport's flow control holds the peer back, while
	// other links go on (default pacing.DefaultRefusalRate, as mcm's; a
	// burst of as many is free).
	RefusalRate int
	// Logger receives link and call events; nil discards them.
	Logger *slog.Logger
	// Tracer receives the CM's typed events (signalling in and out, links
	// up and down, calls, VC states); hooks must not call the CM or block.
	Tracer trace.Tracer
}

// CM is a stand-alone Q.2931 call manager bound to a CoNDIS miniport. See
// the package documentation.
type CM struct {
	// Handlers answer the call-manager upcalls every call manager answers
	// alike (the call control's); cm/handlers.go has the others.
	callctl.Handlers

	m    *ndis.Mediator
	b    *ndis.Binding
	cfg  Config
	addr uni.AESA
	log  *slog.Logger
	core *callctl.Core
	ops  ops

	goroutines spawn.Group   // Shutdown waits for them
	quit       chan struct{} // closed when Shutdown starts: redials stop
	quitOnce   sync.Once
	stopping   context.Context // ends when Shutdown starts: paced readers stop waiting
	stop       context.CancelFunc

	// turns: the peers' signalling readers take turns at the call control
	// (receiveSignalling).
	turns pacing.Turnstile

	// mu guards the peers, their signalling VCs and associations, and
	// everything of the call control (callctl.Core's lock). It is never
	// held while the mediator is called.
	mu      sync.Mutex
	peers   map[string]*peer
	illegal int // VC moves callctl.State does not draw (logged; tests fail on any)
	unbound bool
}

// New binds a stand-alone call manager to the miniport adapter cfg.Adapter
// of mediator m and registers the Q.2931 AF (version 3.1) on the binding
// (NdisCmRegisterAddressFamilyEx, from its ProtocolBindAdapterEx).
func New(m *ndis.Mediator, cfg Config) (*CM, error) {
	if err := pki.ValidName(cfg.Name); err != nil {
		return nil, fmt.Errorf("cm: %w", err)
	}
	if cfg.Adapter == nil {
		return nil, errors.New("cm: no adapter to bind to: set Config.Adapter to the miniport's (miniport.Miniport.Adapter)")
	}
	if cfg.BindingName == "" {
		cfg.BindingName = DefaultBindingName
	}
	if err := cfg.CheckAddressing(); err != nil {
		return nil, fmt.Errorf("cm: %w", err)
	}
	if cfg.RefusalRate <= 0 {
		cfg.RefusalRate = pacing.DefaultRefusalRate
	}
	c := &CM{m: m, cfg: cfg, addr: q2931.Address(cfg.AddressPrefix, cfg.Name), log: cfg.Logger, peers: map[string]*peer{}, quit: make(chan struct{})}
	c.stopping, c.stop = context.WithCancel(context.Background())
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("node", cfg.Name)
	cfg.Timers = uni.NewLink(uni.Config{Timers: cfg.Timers}).Timers()
	c.cfg.Timers = cfg.Timers
	moves := callctl.Transitions{Node: cfg.Name, Trace: cfg.Tracer.VcState,
		Illegal: func(h *ndis.Vc, from, to callctl.State, why callctl.Reason) {
			c.log.Error("call control: a VC moved where its state machine has no arrow", "vc", h.String(), "from", from.String(), "to", to.String(), "reason", why.String())
			c.illegal++ // with c.mu held: moves happen under the core's lock
		}}
	c.core = callctl.NewCore((*owner)(c), &c.mu, callctl.Config{Name: cfg.Name, Address: c.addr,
		Policy: cfg.Policy, Tracer: cfg.Tracer, Logger: c.log, Moves: moves})
	c.Handlers = c.core.Handlers()
	b, st := m.BindAdapter(cfg.Adapter, cfg.BindingName, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		c.ops = ops{Cm: callctl.Cm{B: b}}
		c.core.CM = c.ops
		return b.CmRegisterAddressFamilyEx(q2931.AF)
	})
	if st != ndis.StatusSuccess {
		c.stop()
		return nil, fmt.Errorf("cm: binding to %s and registering the Q.2931 AF: %w", cfg.Adapter, st)
	}
	c.b = b
	return c, nil
}

// Name returns the node name.
func (c *CM) Name() string { return c.cfg.Name }

// Address returns this node's ATM End System Address.
func (c *CM) Address() uni.AESA { return c.addr }

// Adapter returns the miniport adapter the CM is bound to: clients bind
// to it and open the Q.2931 AF there.
func (c *CM) Adapter() *ndis.Adapter { return c.cfg.Adapter }

// Cause returns the Q.2931 cause that ended or refused the last call on
// vc (see mcm.MCM.Cause).
func (c *CM) Cause(vc *ndis.Vc) (uni.Cause, bool) { return c.core.Cause(vc) }

// IllegalMoves is how many VC state changes the call control made that its
// state machine does not draw (each is logged): 0 unless there is a bug.
func (c *CM) IllegalMoves() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.illegal
}

// Shutdown takes the CM down: no new calls; every call is released with
// normal clearing; every AF open is withdrawn
// (NdisCmNotifyCloseAddressFamily), which makes each client close its
// calls, deregister its SAPs and close the AF. Once the call control holds
// nothing, the signalling VCs are deactivated and deleted and the CM
// unbinds (NdisCloseAdapterEx). Shutdown waits for all of that and for
// every goroutine of the CM until ctx ends, then returns ctx's error.
func (c *CM) Shutdown(ctx context.Context) error {
	c.quitOnce.Do(func() {
		close(c.quit)
		c.stop()
	})
	if err := c.core.ClearAll(ctx); err != nil {
		return fmt.Errorf("cm: shutdown: calls, VCs or Q.2931 AF opens remain: %w", err)
	}
	c.mu.Lock()
	for _, p := range c.peers {
		p.as.Detach()
	}
	ps := c.sortedPeersLocked()
	c.mu.Unlock()
	for _, p := range ps {
		if err := c.dropSignalling(p); err != nil {
			return err
		}
	}
	c.goroutines.Stop()
	c.mu.Lock()
	unbound := c.unbound
	c.unbound = true
	c.mu.Unlock()
	if unbound {
		return nil
	}
	if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
		return fmt.Errorf("cm: unbinding from the miniport: %w", st)
	}
	return nil
}

// spawn starts f on a goroutine Shutdown waits for, unless Shutdown is
// over; it reports whether it did.
func (c *CM) spawn(f func()) bool { return c.goroutines.Go(f) }

func (c *CM) sortedPeersLocked() []*peer {
	ps := make([]*peer, 0, len(c.peers))
	for _, p := range c.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}

// traceSignal counts and reports a message sent to or received from p;
// c.mu is held.
func (c *CM) traceSignal(p *peer, dir trace.Direction, b []byte) {
	if dir == trace.In {
		p.view.In++
	} else {
		p.view.Out++
	}
	if h := c.cfg.Tracer.Signal; h != nil {
		h(trace.Signal{Time: c.cfg.Tracer.SignalTime(), Node: c.cfg.Name, Peer: p.name, Dir: dir, Msg: b})
	}
}

// traceLink reports the link to p coming up or going down (reason: the
// transport's, for a link down).
func (c *CM) traceLink(p *peer, up bool, reason string) {
	if h := c.cfg.Tracer.Link; h != nil {
		h(trace.Link{Time: time.Now(), Node: c.cfg.Name, Peer: p.name, Up: up, Reason: reason})
	}
}
