package callctl

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// Policy is how a call manager deals with its peers: where their ATM
// addresses are, and which calls the call control admits. The call
// managers' Configs embed it (mcm.Config, cm.Config), and so does the
// core's.
type Policy struct {
	// AddressPrefix is the network prefix of this node's ATM End System
	// Address; zero takes q2931.DefaultPrefix. It must pass Prefix.Check.
	// Peers not in PeerPrefixes are taken to share it.
	AddressPrefix q2931.Prefix
	// PeerPrefixes gives the prefix of each peer whose prefix is not
	// AddressPrefix: its address is then q2931.Address(PeerPrefixes[name],
	// name).
	PeerPrefixes map[string]q2931.Prefix
	// Authorize decides whether peer may call service on this node. It is
	// called without any call-manager lock held and must not block. A
	// refusal answers the SETUP with RELEASE COMPLETE cause 21 (call
	// rejected): the caller's MakeCall fails with NDIS_STATUS_FAILURE. Nil
	// allows every call.
	Authorize func(peer, service string) bool
	// Trusts, if set, decides which authenticated nodes this one deals
	// with at all, both ways: a call to a node it refuses fails at
	// NdisClMakeCall (or NdisClAddParty) with NDIS_STATUS_INVALID_ADDRESS,
	// as for an unknown node, and Authorize should refuse calls from it.
	// It is called without any call-manager lock held and must not block.
	// Nil trusts every authenticated node.
	Trusts func(peer string) bool
	// MaxRate, if not zero, is the most a call may ask for in either
	// direction, in bytes/s (TokenRate and PeakBandwidth). Calls and QoS
	// changes asking for more are refused with cause 37 (user cell rate
	// not available): NDIS_STATUS_CELLRATE_NOT_AVAILABLE.
	MaxRate uint32
}

// CheckAddressing fills in the default prefix, checks the prefixes, and
// copies PeerPrefixes (the caller may go on changing its map). Its errors
// name the field: "AddressPrefix: ...", "PeerPrefixes[\"b\"]: ...".
func (p *Policy) CheckAddressing() error {
	if p.AddressPrefix == (q2931.Prefix{}) {
		p.AddressPrefix = q2931.DefaultPrefix
	} else if err := p.AddressPrefix.Check(); err != nil {
		return fmt.Errorf("AddressPrefix: %w", unprefixed(err))
	}
	for name, x := range p.PeerPrefixes {
		if err := x.Check(); err != nil {
			return fmt.Errorf("PeerPrefixes[%q]: %w", name, unprefixed(err))
		}
	}
	p.PeerPrefixes = maps.Clone(p.PeerPrefixes)
	return nil
}

// unprefixed is err without package q2931's "q2931: ", to be wrapped again.
func unprefixed(err error) error { return errors.New(strings.TrimPrefix(err.Error(), "q2931: ")) }

// PeerAddress is the address of the node called name: under its entry in
// PeerPrefixes, else under AddressPrefix.
func (p *Policy) PeerAddress(name string) uni.AESA {
	x, ok := p.PeerPrefixes[name]
	if !ok {
		x = p.AddressPrefix
	}
	return q2931.Address(x, name)
}
