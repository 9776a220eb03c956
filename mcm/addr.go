package mcm

import (
	"fmt"

	"github.com/condis-project/condis/uni"
)

// checkAddressing fills in the default prefix and checks the prefixes of
// cfg (callctl.Policy.CheckAddressing).
func (cfg *Config) checkAddressing() error {
	if err := cfg.CheckAddressing(); err != nil {
		return fmt.Errorf("mcm: %w", err)
	}
	return nil
}

// peerAddress is the address of the node called name
// (callctl.Policy.PeerAddress).
func (d *MCM) peerAddress(name string) uni.AESA { return d.cfg.PeerAddress(name) }
