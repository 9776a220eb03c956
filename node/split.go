package node

import (
	"context"
	"errors"

	"github.com/condis-project/condis/cm"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/uni"
)

// Split is a split node's call manager ([TopologySplit]): the stand-alone
// Q.2931 call manager bound to the CoNDIS miniport whose medium is the
// node's QUIC endpoint. It is the node's [Q2931]: the call manager answers
// for calls and signalling, the miniport for data and links.
type Split struct {
	CM       *cm.CM
	Miniport *miniport.Miniport
}

// Adapter is the miniport's adapter, which the CM is bound to: clients
// bind there too and open the Q.2931 AF.
func (s Split) Adapter() *ndis.Adapter { return s.CM.Adapter() }

// Address is the node's ATM End System Address.
func (s Split) Address() uni.AESA { return s.CM.Address() }

// Cause is the Q.2931 cause that ended or refused the last call on vc.
func (s Split) Cause(vc *ndis.Vc) (uni.Cause, bool) { return s.CM.Cause(vc) }

// Calls are the CM's calls with the miniport's counters of their VCs.
func (s Split) Calls() []callctl.CallInfo {
	calls := s.CM.Calls()
	byHandle := make(map[string]miniport.Stats)
	for h, st := range s.Miniport.VcStats() {
		byHandle[h.String()] = st
	}
	for i := range calls {
		calls[i].Stats = statsOf(byHandle[calls[i].Vc])
	}
	return calls
}

// Peers are the CM's peers with the miniport's view of their links
// (remote address, round-trip time).
func (s Split) Peers() []callctl.PeerInfo {
	ps := s.CM.Peers()
	for i := range ps {
		if remote, rtt, ok := s.Miniport.Link(ps[i].Name); ok {
			ps[i].Remote, ps[i].RTT = remote, rtt
		}
	}
	return ps
}

// Totals are the miniport's counters of every VC ever.
func (s Split) Totals() callctl.Stats { return statsOf(s.Miniport.Stats().Total) }

// Connect activates the signalling VC to peer now (cm.CM.Connect).
func (s Split) Connect(peer string) { s.CM.Connect(peer) }

// Shutdown shuts the CM down (its calls released, the AF withdrawn, its
// signalling VCs deleted, unbound), then halts the miniport once every
// other protocol has unbound too (a client unbinds after the AF is
// withdrawn, possibly after the CM is gone): its medium, the endpoint, is
// closed with it.
func (s Split) Shutdown(ctx context.Context) error {
	return errors.Join(s.CM.Shutdown(ctx), s.Miniport.HaltUnbound(ctx))
}

// statsOf is the miniport's counters as the call managers report them:
// SDUs policed on receive are among those dropped.
func statsOf(st miniport.Stats) callctl.Stats {
	return callctl.Stats{TxPackets: st.TxPackets, TxBytes: st.TxBytes, TxDropped: st.TxDropped, TxPoliced: st.TxPoliced,
		TxShaped: st.TxShaped, RxPackets: st.RxPackets, RxBytes: st.RxBytes, RxDropped: st.RxDropped + st.RxPoliced}
}
