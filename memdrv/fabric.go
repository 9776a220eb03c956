package memdrv

import (
	"sync"

	"github.com/condis-project/condis/ndis"
)

// endpoint is where the switch delivers cells for one VCI.
type endpoint interface {
	// handleLocked is the VC the endpoint is now (the fabric's lock held).
	handleLocked() *ndis.Vc
	// deliver delivers a cell switched to the endpoint when it was VC h.
	deliver(h *ndis.Vc, data []byte)
}

// delivery is a cell's destination, taken under the lock and delivered
// after it is released: the endpoint, and the VC it was then (its record
// may be another VC's by delivery time, and the cell is not that VC's).
type delivery struct {
	end endpoint
	h   *ndis.Vc
}

// Fabric is the in-memory network: a directory of registered services, a
// cell switch between connection identifiers, and the Loop every attached
// driver posts deferred work to.
//
// Its lock also guards the state of every in-memory call manager attached
// to it (their AF opens, SAPs, VCs and parties), as one network's
// signalling would be serialized: each step of a call touches both ends and
// the switch, so one critical section per step replaces a lock round trip
// per object. The lock is never held while a driver calls the mediator, nor
// while a cell is delivered. Separate fabrics (networks) share nothing.
type Fabric struct {
	Loop

	mu       sync.Mutex
	services map[string]*cmSap
	ports    map[uint32]*port // by VCI, for the miniports and tests that know only the VCI
	nextVCI  uint32
}

// NewFabric returns an empty network.
func NewFabric() *Fabric {
	return &Fabric{services: map[string]*cmSap{}, ports: map[uint32]*port{}, nextVCI: 32}
}

// port is where one connection identifier meets the switch: the endpoint
// that receives the cells switched to it, and its links. A call manager's
// VC context embeds the port of the VCI it allocated, so a call connects,
// switches and disconnects without a lookup; the directory (Fabric.ports)
// finds a port by VCI for a miniport, which knows only the VCI it was
// activated with.
type port struct {
	vci   uint32
	owned bool // embedded in a VC context; else made on demand, dropped when idle
	end   endpoint
	out   portSet // where cells sent on vci go
	in    portSet // who sends to vci, so disconnect touches only its own links
}

func (p *port) idle() bool { return p.end == nil && p.out.first == nil && p.in.first == nil }

// portSet is a set of links: the first inline (a point-to-point call costs
// no allocation), more for a multipoint root. more is a pointer so that a
// port, embedded in every VC context, stays small.
type portSet struct {
	first *port
	more  *[]*port
}

func (s *portSet) add(p *port) {
	switch {
	case s.first == nil:
		s.first = p
	case s.more == nil:
		s.more = &[]*port{p}
	default:
		*s.more = append(*s.more, p)
	}
}

// rest returns the links after the first.
func (s *portSet) rest() []*port {
	if s.more == nil {
		return nil
	}
	return *s.more
}

// remove removes every link to p, keeping the others in order.
func (s *portSet) remove(p *port) {
	var first *port
	if s.first != p {
		first = s.first
	}
	rest := s.rest()
	more := rest[:0]
	for _, x := range rest {
		switch {
		case x == p:
		case first == nil:
			first = x
		default:
			more = append(more, x)
		}
	}
	clear(rest[len(more):])
	s.first = first
	if s.more != nil {
		*s.more = more
	}
}

func (s *portSet) each(f func(*port)) {
	if s.first != nil {
		f(s.first)
	}
	for _, p := range s.rest() {
		f(p)
	}
}

// ownPortLocked gives p, embedded in a VC context, a fresh VCI and lists
// it in the directory.
func (f *Fabric) ownPortLocked(p *port) {
	f.nextVCI++
	p.vci, p.owned = f.nextVCI, true
	f.ports[p.vci] = p
}

// releasePortLocked takes a VC context's port out of the directory once
// the VC is gone.
func (f *Fabric) releasePortLocked(p *port) {
	if p.vci != 0 && f.ports[p.vci] == p {
		delete(f.ports, p.vci)
	}
}

// portLocked finds the port of vci, making one if asked.
func (f *Fabric) portLocked(vci uint32, create bool) *port {
	p := f.ports[vci]
	if p == nil && create {
		p = &port{vci: vci}
		f.ports[vci] = p
	}
	return p
}

// dropIdleLocked forgets a port made on demand once nothing uses it.
func (f *Fabric) dropIdleLocked(p *port) {
	if !p.owned && p.idle() && f.ports[p.vci] == p {
		delete(f.ports, p.vci)
	}
}

// register claims service for s; it fails if another SAP holds it.
func (f *Fabric) register(service string, s *cmSap) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[service]; ok {
		return false
	}
	f.services[service] = s
	return true
}

func (f *Fabric) unregister(service string, s *cmSap) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[service] == s {
		delete(f.services, service)
	}
}

// lookupLocked finds the SAP registered for service, without a copy of it.
func (f *Fabric) lookupLocked(service []byte) *cmSap {
	return f.services[string(service)]
}

// attach makes e receive the cells switched to vci.
func (f *Fabric) attach(vci uint32, e endpoint) {
	f.mu.Lock()
	f.portLocked(vci, true).end = e
	f.mu.Unlock()
}

func (f *Fabric) detach(vci uint32) {
	f.mu.Lock()
	if p := f.portLocked(vci, false); p != nil {
		f.detachLocked(p)
	}
	f.mu.Unlock()
}

func (f *Fabric) detachLocked(p *port) {
	p.end = nil
	f.dropIdleLocked(p)
}

// connect switches cells sent on from to to.
func (f *Fabric) connect(from, to uint32) {
	f.mu.Lock()
	f.connectLocked(f.portLocked(from, true), f.portLocked(to, true))
	f.mu.Unlock()
}

func (f *Fabric) connectLocked(from, to *port) {
	from.out.add(to)
	to.in.add(from)
}

// disconnect removes every link from or to vci.
func (f *Fabric) disconnect(vci uint32) {
	f.mu.Lock()
	if p := f.portLocked(vci, false); p != nil {
		f.disconnectLocked(p)
	}
	f.mu.Unlock()
}

func (f *Fabric) disconnectPort(p *port) {
	f.mu.Lock()
	f.disconnectLocked(p)
	f.mu.Unlock()
}

func (f *Fabric) disconnectLocked(p *port) {
	if p.out.first != nil {
		p.out.each(func(to *port) {
			to.in.remove(p)
			f.dropIdleLocked(to)
		})
		p.out = portSet{}
	}
	if p.in.first != nil {
		p.in.each(func(from *port) {
			from.out.remove(p)
			f.dropIdleLocked(from)
		})
		p.in = portSet{}
	}
	f.dropIdleLocked(p)
}

// switchCell delivers data sent on vci to every connected endpoint and
// returns how many received it.
func (f *Fabric) switchCell(vci uint32, data []byte) int {
	var buf [4]delivery
	f.mu.Lock()
	var ts []delivery
	if p := f.ports[vci]; p != nil {
		ts = p.targetsLocked(buf[:0])
	}
	f.mu.Unlock()
	return deliverAll(ts, data)
}

// switchFrom is switchCell for a sender that holds its port.
func (f *Fabric) switchFrom(p *port, data []byte) int {
	var buf [4]delivery
	f.mu.Lock()
	ts := p.targetsLocked(buf[:0])
	f.mu.Unlock()
	return deliverAll(ts, data)
}

// targetsLocked appends the endpoints cells from p go to (f.mu held):
// delivery happens after the caller released the lock, since an endpoint
// may call back into the fabric.
func (p *port) targetsLocked(ts []delivery) []delivery {
	if to := p.out.first; to != nil && to.end != nil {
		ts = append(ts, delivery{to.end, to.end.handleLocked()})
	}
	for _, to := range p.out.rest() {
		if to.end != nil {
			ts = append(ts, delivery{to.end, to.end.handleLocked()})
		}
	}
	return ts
}

func deliverAll(ts []delivery, data []byte) int {
	for _, d := range ts {
		d.end.deliver(d.h, data)
	}
	return len(ts)
}
