package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// IP over condis: the [ip] section's interface (package ipvc) and the
// CoNDIS client it makes its calls with.
//
// ipClient is ipvc.Calls over a clientcore.Core of its own, bound to the
// node's call manager as "ip" (so that `condis calls` and `condis status`
// name it): datagram calls to NODE/ip, and the "ip" SAP, whose calls are
// accepted only from the nodes ipvc has routes for. The Core keeps the
// CoNDIS contract (a call is closed only once its sends have completed,
// ProtocolClIncomingCloseCall is answered, VCs are deleted, a withdrawn AF
// is torn down); this file only translates between its handlers and
// ipvc's Receiver and Circuit.
type ipClient struct {
	core *clientcore.Core
	log  *slog.Logger
}

// ipCall is one call of the client: the Core's handler of its VC and,
// once connected, its ipvc.Circuit.
//
// The Core calls Connected and Closed with its lock held, and ipvc's
// Receiver must be called with no lock held and may send on the circuit:
// Up and Closed are passed on from the Core's worker (Defer), in the order
// they happened. An outgoing call's Up is called by Call itself, before it
// returns (ipvc.Calls says so); its Closed waits for that, and a call Call
// gave up on tells its Receiver nothing.
type ipCall struct {
	clientcore.NopHandler
	cl       *ipClient
	rx       ipvc.Receiver
	incoming bool

	v      atomic.Pointer[clientcore.VC]
	maxSDU atomic.Int64

	mu        sync.Mutex
	upTold    bool              // rx.Up was called
	abandoned bool              // Call returned an error: rx is told nothing
	closed    *ipvc.CloseReason // the call ended; rx.Closed is due
	told      bool              // rx.Closed was called
}

func newIPClient(ctx context.Context, cm CallManager, log *slog.Logger) (*ipClient, error) {
	core, err := clientcore.New(ctx, cm, clientcore.Options{Name: "ip", Logger: log})
	if err != nil {
		return nil, err
	}
	return &ipClient{core: core, log: log}, nil
}

// Call makes a datagram call to node/ip (ipvc.Calls).
func (cl *ipClient) Call(ctx context.Context, node string, fs ndis.Flowspec, rx ipvc.Receiver) error {
	a := &ipCall{cl: cl, rx: rx}
	v, err := cl.core.Call(ctx, node+"/"+ipvc.Service, clientcore.CallOptions{Tx: fs, Rx: fs}, a)
	if err != nil {
		a.mu.Lock()
		a.abandoned = true
		a.mu.Unlock()
		var ce *clientcore.CallError
		if errors.As(err, &ce) {
			return &ipvc.CallError{Node: node, Status: ce.Status, Cause: ce.Cause}
		}
		return &ipvc.CallError{Node: node, Err: err}
	}
	a.v.Store(v)
	a.setMaxSDU(v.State().Flows)
	rx.Up(a)
	a.mu.Lock()
	a.upTold = true
	a.mu.Unlock()
	a.settle()
	return nil
}

// Listen registers the "ip" SAP (ipvc.Calls). The SAP is local, so
// mcmSetupWait only guards against a call manager that never answers.
func (cl *ipClient) Listen(accept func(peer string) ipvc.Receiver) error {
	ctx, cancel := context.WithTimeout(context.Background(), mcmSetupWait)
	defer cancel()
	_, err := cl.core.Listen(ctx, ipvc.Service, &ipListen{cl: cl, accept: accept})
	return err
}

// mcmSetupWait bounds how long Listen waits for the SAP's registration.
const mcmSetupWait = 10 * time.Second

// Shutdown closes every call, deregisters the SAP, closes the AF and
// unbinds, waiting for all of that until ctx ends.
func (cl *ipClient) Shutdown(ctx context.Context) error { return cl.core.Shutdown(ctx) }

// ipListen takes the calls offered on the "ip" SAP.
type ipListen struct {
	cl     *ipClient
	accept func(peer string) ipvc.Receiver
}

// Registered: Listen returns the outcome.
func (l *ipListen) Registered(*clientcore.SAP, error) {}

// Offered accepts a call from a node ipvc has a route for: the node-side
// authorization of incoming IP calls. A caller the call manager cannot
// name is refused.
func (l *ipListen) Offered(_ *clientcore.SAP, o *clientcore.Offer) clientcore.Handler {
	if o.Peer == "" {
		return nil
	}
	rx := l.accept(o.Peer)
	if rx == nil {
		return nil
	}
	a := &ipCall{cl: l.cl, rx: rx, incoming: true}
	a.v.Store(o.VC)
	a.setMaxSDU(o.Flows)
	return a
}

// Ended: the SAP is gone (the node is stopping, or the AF was withdrawn).
func (l *ipListen) Ended(*clientcore.SAP, clientcore.Reason) {}

// setMaxSDU takes the largest SDU the call carries both ways.
func (a *ipCall) setMaxSDU(f *clientcore.Flows) {
	n := uint32(q2931.MaxAAL5SDU)
	if f != nil {
		for _, m := range []uint32{f.Tx.MaxSduSize, f.Rx.MaxSduSize} {
			if m != 0 && m != ndis.QoSNotSpecified {
				n = min(n, m)
			}
		}
	}
	a.maxSDU.Store(int64(n))
}

// Connected: an incoming call is up; its Receiver learns it from the
// worker. (An outgoing call's Up comes from Call.)
func (a *ipCall) Connected(v *clientcore.VC, f *clientcore.Flows) {
	if !a.incoming {
		return
	}
	a.cl.core.Defer(func() {
		a.rx.Up(a)
		a.mu.Lock()
		a.upTold = true
		a.mu.Unlock()
		a.settle()
	})
}

// Received hands each SDU to the Receiver, which copies what it keeps.
func (a *ipCall) Received(_ *clientcore.VC, sdus [][]byte) {
	for _, d := range sdus {
		a.rx.Receive(d)
	}
}

// BorrowsReceived: Received keeps nothing (ipvc's Receive copies the
// packet into its device queue), so the Core need not copy the SDUs
// (clientcore.BorrowingHandler).
func (a *ipCall) BorrowsReceived() {}

// QoSChanged follows the call's new MaxSduSize.
func (a *ipCall) QoSChanged(_ *clientcore.VC, f clientcore.Flows) { a.setMaxSDU(&f) }

// Closed: the call is over; the Receiver learns why from the worker.
func (a *ipCall) Closed(_ *clientcore.VC, e clientcore.End) {
	r := ipvc.CloseReason{}
	if e.Reason == clientcore.ReasonRemote {
		r = ipvc.CloseReason{Status: e.Status, Cause: e.Cause, ByPeer: true}
	}
	a.mu.Lock()
	a.closed = &r
	a.mu.Unlock()
	a.cl.core.Defer(a.settle)
}

// settle tells the Receiver its call is over, once: after Up, or, for an
// incoming call accepted but never connected, without it. A call Call gave
// up on tells it nothing.
func (a *ipCall) settle() {
	a.mu.Lock()
	r := a.closed
	due := r != nil && !a.told && !a.abandoned && (a.upTold || a.incoming)
	if due {
		a.told = true
	}
	a.mu.Unlock()
	if due {
		a.rx.Closed(*r)
	}
}

// Send sends SDUs in one list (ipvc.Circuit).
func (a *ipCall) Send(sdus ...[]byte) error { return a.v.Load().Send(sdus...) }

// MaxSDU is the call's negotiated MaxSduSize (ipvc.Circuit).
func (a *ipCall) MaxSDU() int { return int(a.maxSDU.Load()) }

// Close closes the call once its sends have completed (ipvc.Circuit).
func (a *ipCall) Close() { a.v.Load().Close(clientcore.ReasonLocal, nil) }

// String names the VC as `condis calls` does (ipvc.Circuit).
func (a *ipCall) String() string { return a.v.Load().Name() }

var (
	_ ipvc.Calls                  = (*ipClient)(nil)
	_ ipvc.Circuit                = (*ipCall)(nil)
	_ clientcore.BorrowingHandler = (*ipCall)(nil)
	_ clientcore.ListenHandler    = (*ipListen)(nil)
)

// startIP brings up the [ip] section's interface: the client, the TUN
// device and ipvc on them.
func (n *Node) startIP() error {
	c := n.Config.IP
	if c == nil {
		return nil
	}
	cfg := *c
	cfg.Logger = n.log
	dev, err := ipvc.Open(cfg)
	if err != nil {
		return &Error{File: n.Config.File, Key: "ip", Problem: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), mcmSetupWait)
	defer cancel()
	cl, err := newIPClient(ctx, n.CallManager(), n.log)
	if err != nil {
		dev.Close()
		return err
	}
	ifc, err := ipvc.New(cfg, dev, cl)
	if err != nil {
		dev.Close()
		cl.Shutdown(ctx)
		return &Error{File: n.Config.File, Key: "ip", Problem: err.Error()}
	}
	n.ip, n.ipClient = ifc, cl
	n.log.Info("IP over condis up", "node", n.Config.Name, "device", cfg.Device, "address", cfg.Address.String(), "routes", len(cfg.Routes))
	return nil
}

// stopIP closes the interface and its calls.
func (n *Node) stopIP(ctx context.Context) error {
	if n.ip == nil {
		return nil
	}
	return errors.Join(n.ip.Close(), n.ipClient.Shutdown(ctx))
}

// IPReporter is implemented by call managers whose node runs IP over
// condis: status reports it.
type IPReporter interface {
	// IPStatus describes the interface, nil if there is none.
	IPStatus() *IPStatus
}

// IPStatus describes the node's IP over condis interface, nil without one.
func (a Q2931CallManager) IPStatus() *IPStatus {
	if a.IP == nil {
		return nil
	}
	cfg := a.IP.Config()
	dev := cfg.Device
	if dev == "" {
		dev = ipvc.DefaultDevice
	}
	peers := a.IP.Peers()
	if peers == nil {
		peers = []ipvc.PeerInfo{}
	}
	return &IPStatus{Device: dev, Address: cfg.Address.String(), MTU: a.IP.MTU(), Peers: peers, Stats: a.IP.Stats()}
}

// IP is the node's IP over condis interface, nil without an [ip] section.
func (n *Node) IP() *ipvc.Interface { return n.ip }
