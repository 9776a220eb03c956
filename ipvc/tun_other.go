//go:build !linux

package ipvc

import (
	"fmt"
	"runtime"
)

// Open fails: IP over condis needs Linux's TUN device.
func Open(cfg Config) (Device, error) {
	return nil, fmt.Errorf("ip: IP over condis ([ip]) needs Linux's TUN device; this node runs on %s: remove the [ip] section", runtime.GOOS)
}
