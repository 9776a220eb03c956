package mcm

import (
	"fmt"
)

// checkAddressing fills in the default prefix and checks the prefixes of
// cfg (callctl.Policy.CheckAddressing).
func (cfg *Config) checkAddressing() error {
	if err := cfg.CheckAddressing(); err != nil {
		return fmt.Errorf("mcm: %w", err)
	}
	return nil
}
