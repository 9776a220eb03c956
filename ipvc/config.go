package ipvc

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/condis-project/condis/ndis"
)

// Defaults.
const (
	// DefaultDevice is the name of the TUN interface.
	DefaultDevice = "condis0"
	// DefaultIdleTimeout is how long a VC carries no packet, either way,
	// before it is closed.
	DefaultIdleTimeout = 5 * time.Minute
	// MinMTU is the MTU the interface starts with when none is configured:
	// the payload of a QUIC datagram in quic-go's smallest packets (1280
	// octets of UDP payload, before path MTU discovery), which every path
	// carries. Once VCs are up the interface takes the largest MTU all of
	// them carry (their negotiated MaxSduSize).
	MinMTU = 1200
	// MaxMTU is the largest MTU: the largest AAL5 SDU.
	MaxMTU = 65535
	// DefaultQueueLen is how many packets wait for a destination node
	// while its VC is being set up; more are dropped (and counted).
	DefaultQueueLen = 64
	// RefusedHold is how long after a refused or failed call packets for
	// that node are answered with ICMP destination unreachable at once,
	// without a new call: a host that retries (ping, TCP SYNs) does not
	// make a SETUP per packet.
	RefusedHold = time.Second
)

// Route sends the packets for Prefixes over VCs to Node, like a WireGuard
// peer's AllowedIPs: packets from Node are accepted only from addresses in
// Prefixes.
type Route struct {
	Prefixes []netip.Prefix
	Node     string
	// Flowspec is asked for in both directions; the zero value is best
	// effort with nothing specified.
	Flowspec ndis.Flowspec
}

// Config configures an [Interface].
type Config struct {
	// Device is the TUN interface's name; "" is DefaultDevice.
	Device string
	// Address is this node's address on the interface and the prefix
	// of the network it is on (198.18.0.1/24).
	Address netip.Prefix
	// MTU of the interface; 0 follows the VCs (see MinMTU).
	MTU int
	// IdleTimeout closes VCs that carried no packet for that long; 0 is
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Routes, looked up by longest prefix.
	Routes []Route
	// QueueLen bounds the packets held per node while its call is set
	// up; 0 is DefaultQueueLen.
	QueueLen int
	// Logger, nil for none.
	Logger *slog.Logger
}

// Check reports the first problem of c in one line: a bad address, a
// prefix with host bits set, a prefix routed twice, this node's address
// inside a routed prefix, a route without a node.
func (c *Config) Check() error {
	if !c.Address.IsValid() {
		return fmt.Errorf("ip address: missing (this node's address on the interface, with its prefix length: 198.18.0.1/24)")
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > MaxMTU) {
		return fmt.Errorf("ip mtu %d: want 576 to %d, or leave it out to follow the VCs", c.MTU, MaxMTU)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("ip idle_timeout %v: must not be negative", c.IdleTimeout)
	}
	seen := map[netip.Prefix]int{}
	for i, r := range c.Routes {
		if r.Node == "" {
			return fmt.Errorf("ip route[%d]: no node", i+1)
		}
		if len(r.Prefixes) == 0 {
			return fmt.Errorf("ip route[%d]: no prefixes", i+1)
		}
		for _, p := range r.Prefixes {
			if !p.IsValid() {
				return fmt.Errorf("ip route[%d]: invalid prefix", i+1)
			}
			if p.Masked() != p {
				return fmt.Errorf("ip route[%d]: prefix %v has host bits set (did you mean %v?)", i+1, p, p.Masked())
			}
			if j, dup := seen[p]; dup {
				return fmt.Errorf("ip route[%d]: prefix %v is already routed by route[%d]", i+1, p, j)
			}
			seen[p] = i + 1
			if p.Contains(c.Address.Addr()) {
				return fmt.Errorf("ip route[%d]: prefix %v holds this node's own address %v", i+1, p, c.Address.Addr())
			}
		}
	}
	return nil
}

func (c *Config) device() string {
	if c.Device == "" {
		return DefaultDevice
	}
	return c.Device
}

func (c *Config) idleTimeout() time.Duration {
	if c.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return c.IdleTimeout
}

func (c *Config) queueLen() int {
	if c.QueueLen == 0 {
		return DefaultQueueLen
	}
	return c.QueueLen
}
