package memdrv

import (
	"encoding/binary"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// Parameter and SAP type codes the in-memory drivers use in the AF- and
// medium-specific blobs of CoNDIS structures.
const (
	// ParamService marks CallMgrSpecific parameters holding the called
	// service name (the destination of MakeCall and AddParty).
	ParamService uint32 = 0xC0D15001
	// ParamVCI marks MediaSpecific parameters holding the 4-byte
	// big-endian connection identifier assigned to the VC.
	ParamVCI uint32 = 0xC0D15002
	// SapService marks a CO_SAP whose bytes are a service name.
	SapService uint32 = 0xC0D15003
)

// AF is the address family the in-memory call managers register: Q.2931,
// UNI 3.1, as an ATM call manager would.
var AF = ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}

// CallParams builds call parameters that call service with the given
// transmit/receive flowspecs.
func CallParams(service string, tx, rx ndis.Flowspec) *ndis.CallParameters {
	return &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{
		Transmit: tx, Receive: rx,
		CallMgrSpecific: ndis.SpecificParameters{ParamType: ParamService, Parameters: []byte(service)},
	}}
}

// ServiceSap builds the CO_SAP for a service name.
func ServiceSap(service string) *ndis.CoSap {
	return &ndis.CoSap{SapType: SapService, Sap: []byte(service)}
}

// serviceOf extracts the called service from call parameters.
func serviceOf(p *ndis.CallParameters) (string, bool) {
	if p == nil || p.CallMgrParameters == nil || p.CallMgrParameters.CallMgrSpecific.ParamType != ParamService {
		return "", false
	}
	return string(p.CallMgrParameters.CallMgrSpecific.Parameters), true
}

// VCIOf returns the connection identifier a call manager put in activation
// parameters.
func VCIOf(p *ndis.CallParameters) (uint32, bool) {
	if p == nil || p.MediaParameters == nil || p.MediaParameters.MediaSpecific.ParamType != ParamVCI ||
		len(p.MediaParameters.MediaSpecific.Parameters) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.MediaParameters.MediaSpecific.Parameters), true
}

// endpoint is where the switch delivers cells for one VCI.
type endpoint interface {
	deliver(data []byte)
}

// Fabric is the in-memory network: a directory of registered services, a
// cell switch between connection identifiers, and the Loop every attached
// driver posts deferred work to.
type Fabric struct {
	Loop

	mu       sync.Mutex
	services map[string]*cmSap
	ends     map[uint32]endpoint
	links    map[uint32]linkSet // from -> to
	rlinks   map[uint32]linkSet // to -> from, so disconnect touches only its own links
	nextVCI  uint32
}

// NewFabric returns an empty network.
func NewFabric() *Fabric {
	return &Fabric{services: map[string]*cmSap{}, ends: map[uint32]endpoint{}, links: map[uint32]linkSet{}, rlinks: map[uint32]linkSet{}, nextVCI: 32}
}

func (f *Fabric) allocVCI() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextVCI++
	return f.nextVCI
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

func (f *Fabric) lookup(service string) *cmSap {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.services[service]
}

// attach makes e receive the cells switched to vci.
func (f *Fabric) attach(vci uint32, e endpoint) {
	f.mu.Lock()
	f.ends[vci] = e
	f.mu.Unlock()
}

func (f *Fabric) detach(vci uint32) {
	f.mu.Lock()
	delete(f.ends, vci)
	f.mu.Unlock()
}

// linkSet is where cells from one VCI go: the first target inline (a
// point-to-point call costs no allocation), more for a multipoint root.
type linkSet struct {
	first uint32
	more  []uint32
}

func (l linkSet) add(t uint32) linkSet {
	if l.first == 0 {
		l.first = t
	} else {
		l.more = append(l.more, t)
	}
	return l
}

// without returns l minus t, and whether anything is left.
func (l linkSet) without(t uint32) (linkSet, bool) {
	var out linkSet
	l.each(func(x uint32) {
		if x != t {
			out = out.add(x)
		}
	})
	return out, out.first != 0
}

func (l linkSet) each(f func(uint32)) {
	if l.first != 0 {
		f(l.first)
	}
	for _, t := range l.more {
		f(t)
	}
}

// connect switches cells sent on from to to.
func (f *Fabric) connect(from, to uint32) {
	f.mu.Lock()
	f.links[from] = f.links[from].add(to)
	f.rlinks[to] = f.rlinks[to].add(from)
	f.mu.Unlock()
}

// disconnect removes every link from or to vci.
func (f *Fabric) disconnect(vci uint32) {
	f.mu.Lock()
	drop := func(m map[uint32]linkSet, k, t uint32) {
		if l, ok := m[k].without(t); ok {
			m[k] = l
		} else {
			delete(m, k)
		}
	}
	f.links[vci].each(func(to uint32) { drop(f.rlinks, to, vci) })
	f.rlinks[vci].each(func(from uint32) { drop(f.links, from, vci) })
	delete(f.links, vci)
	delete(f.rlinks, vci)
	f.mu.Unlock()
}

// switchCell delivers data sent on vci to every connected endpoint and
// returns how many received it.
func (f *Fabric) switchCell(vci uint32, data []byte) int {
	f.mu.Lock()
	var targets [4]endpoint
	ts := targets[:0]
	l := f.links[vci]
	if e := f.ends[l.first]; l.first != 0 && e != nil {
		ts = append(ts, e)
	}
	for _, to := range l.more {
		if e := f.ends[to]; e != nil {
			ts = append(ts, e)
		}
	}
	f.mu.Unlock()
	for _, e := range ts {
		e.deliver(data)
	}
	return len(ts)
}
