package node

import (
	"slices"
	"strings"
	"time"
)

// PeerInfo is one peer of a node, as `condis peers` lists it: every
// [[peer]] of its configuration and every node it has a link with or has
// tried to reach.
type PeerInfo struct {
	Name string `json:"name"`
	// Configured: the peer is a [[peer]] of the node's configuration.
	Configured bool `json:"configured"`
	// Address is the peer's UDP address: where the live link goes (the
	// address dialled, or the one the peer connected from), else the
	// configured one; "" if neither is known.
	Address    string `json:"address,omitempty"`
	ATMAddress string `json:"atm_address"` // its ATM End System Address
	// State is the link's: up, connecting (dialling) or down.
	State string `json:"state"`
	// Since is when State last changed; absent if it never did (a
	// configured peer the node has not tried to reach).
	Since time.Time `json:"since,omitzero"`
	// RTTMs is the live link's smoothed round-trip time in milliseconds
	// (QUIC's estimate); absent while the link is down.
	RTTMs float64 `json:"rtt_ms,omitempty"`
	// Calls is the number of calls with the peer, including calls kept
	// for T309 while the link is down.
	Calls int `json:"calls"`
	// MessagesIn and MessagesOut count the Q.2931 messages received from
	// and sent to the peer since the node started.
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	// LastError is the last thing that went wrong with the link: why it
	// went down, or why a dial failed (a TLS verification failure says
	// so); LastErrorAt is when. LinkLoss says why the last link went down,
	// even if dials failed since.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LinkLoss    string    `json:"link_loss,omitempty"`
}

// Link states of a PeerInfo (mcm.LinkState's names).
const (
	PeerUp         = "up"
	PeerConnecting = "connecting"
	PeerDown       = "down"
)

// PeerReporter is implemented by call managers that link the node to
// other nodes: the answer to "peers" is theirs. A call manager without it
// has no peers.
type PeerReporter interface {
	// Peers describes every peer, in name order.
	Peers() []PeerInfo
}

// Peers describes every peer of the call manager and every [[peer]] of Config (if
// set), in name order. A configured peer it does not know (yet) is
// down, at the address its [[peer]] gives.
func (a Q2931CallManager) Peers() []PeerInfo {
	known := a.CM.Peers()
	out := make([]PeerInfo, 0, len(known))
	byName := make(map[string]int, len(known))
	for _, p := range known {
		pi := PeerInfo{Name: p.Name, ATMAddress: p.Address.String(), State: p.State.String(), Since: p.Since,
			Calls: p.Calls, MessagesIn: p.MessagesIn, MessagesOut: p.MessagesOut,
			LastError: p.LastError, LastErrorAt: p.LastErrorAt, LinkLoss: p.LinkLoss}
		if p.Remote != nil {
			pi.Address = p.Remote.String()
		}
		if p.RTT > 0 {
			pi.RTTMs = float64(p.RTT) / float64(time.Millisecond)
		}
		byName[p.Name] = len(out)
		out = append(out, pi)
	}
	if a.Config != nil {
		for _, cp := range a.Config.Peers {
			i, ok := byName[cp.Name]
			if !ok {
				i = len(out)
				out = append(out, PeerInfo{Name: cp.Name, ATMAddress: a.Config.PeerATMAddress(cp.Name).String(), State: PeerDown})
			}
			out[i].Configured = true
			if out[i].Address == "" {
				out[i].Address = cp.Address
			}
		}
	}
	slices.SortFunc(out, func(x, y PeerInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// Peers describes the node's peers (a [PeerReporter] call manager's); a
// call manager that links to no other node has none.
func (c *Control) Peers() []PeerInfo {
	if r, ok := c.cm.(PeerReporter); ok {
		return r.Peers()
	}
	return []PeerInfo{}
}
