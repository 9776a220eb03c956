package miniport

// Introspection for the node that runs the miniport (`condis calls`,
// `condis peers`): what a management tool reads, outside the CoNDIS
// contract, as a driver's WMI or debugger extension would.

import (
	"net"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// VcStats returns the counters of every VC the miniport holds, by NDIS
// handle (the same counters as OidVcStats on the VC).
func (mp *Miniport) VcStats() map[*ndis.Vc]Stats {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	out := make(map[*ndis.Vc]Stats, len(mp.vcs))
	for v := range mp.vcs {
		out[v.h] = v.st
	}
	return out
}

// Link describes the live link to peer: the address it runs to and its
// smoothed round-trip time, as far as the transport says
// (transport.RemoteAddresser, transport.RTTer); ok is false while the
// peer has no link. The transport is asked without the miniport's lock.
func (mp *Miniport) Link(peer string) (remote net.Addr, rtt time.Duration, ok bool) {
	mp.mu.Lock()
	var l transport.Link
	if pr := mp.peers[peer]; pr != nil {
		l = pr.link
	}
	mp.mu.Unlock()
	if l == nil {
		return nil, 0, false
	}
	if r, is := l.(transport.RemoteAddresser); is {
		remote = r.RemoteAddr()
	}
	if r, is := l.(transport.RTTer); is {
		rtt = r.RTT()
	}
	return remote, rtt, true
}
