package mcm

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// checkAddressing fills in the default prefix and checks the prefixes of
// cfg.
func (cfg *Config) checkAddressing() error {
	if cfg.AddressPrefix == (q2931.Prefix{}) {
		cfg.AddressPrefix = q2931.DefaultPrefix
	} else if err := cfg.AddressPrefix.Check(); err != nil {
		return fmt.Errorf("mcm: AddressPrefix: %w", unprefixed(err))
	}
	for name, p := range cfg.PeerPrefixes {
		if err := p.Check(); err != nil {
			return fmt.Errorf("mcm: PeerPrefixes[%q]: %w", name, unprefixed(err))
		}
	}
	cfg.PeerPrefixes = maps.Clone(cfg.PeerPrefixes) // the caller may go on changing its map
	return nil
}

// unprefixed is err without package q2931's "q2931: ", to be wrapped again.
func unprefixed(err error) error { return errors.New(strings.TrimPrefix(err.Error(), "q2931: ")) }

// peerAddress is the address of the node called name: under its entry in
// Config.PeerPrefixes, else under this node's prefix.
func (d *MCM) peerAddress(name string) uni.AESA {
	p, ok := d.cfg.PeerPrefixes[name]
	if !ok {
		p = d.cfg.AddressPrefix
	}
	return q2931.Address(p, name)
}
