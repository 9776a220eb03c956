package node

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
)

// ipValid is a node with the peers beta and gamma and a minimal [ip]
// section: an address and one route.
const ipValid = valid + peers + `
[ip]
address = "198.18.0.1/24"

[[ip.route]]
prefixes = ["198.18.0.2/32"]
node = "beta"
`

// TestLoadIP: an [ip] section with only an address and a route gets the
// device condis0, the idle timeout 5 minutes, the MTU that follows the VCs
// and a best-effort route; the keys given are taken as written.
func TestLoadIP(t *testing.T) {
	c, err := Load(write(t, ipValid))
	if err != nil {
		t.Fatal(err)
	}
	ip := c.IP
	if ip == nil {
		t.Fatal("no [ip] in the Config")
	}
	if ip.Device != "condis0" || ip.IdleTimeout != 5*time.Minute || ip.MTU != 0 || ip.Address != netip.MustParsePrefix("198.18.0.1/24") {
		t.Errorf("defaults: device %q, idle_timeout %v, mtu %d, address %v; want condis0, 5m0s, 0, 198.18.0.1/24", ip.Device, ip.IdleTimeout, ip.MTU, ip.Address)
	}
	if len(ip.Routes) != 1 || ip.Routes[0].Node != "beta" || len(ip.Routes[0].Prefixes) != 1 ||
		ip.Routes[0].Prefixes[0] != netip.MustParsePrefix("198.18.0.2/32") || ip.Routes[0].Flowspec.ServiceType != ndis.ServiceBestEffort {
		t.Errorf("routes %+v, want 198.18.0.2/32 to beta, best effort", ip.Routes)
	}

	c, err = Load(write(t, valid+peers+`
[ip]
address = "198.18.0.1/24"
device = "vc7"
mtu = 9000
idle_timeout = "30s"

[[ip.route]]
prefixes = ["198.18.0.2/32", "198.18.4.0/22"]
node = "beta"
flowspec = { service = "guaranteed", rate = 125000, peak = 250000, max_sdu = 9000 }

[[ip.route]]
prefixes = ["198.18.0.3/32"]
node = "gamma"
`))
	if err != nil {
		t.Fatal(err)
	}
	ip = c.IP
	if ip.Device != "vc7" || ip.MTU != 9000 || ip.IdleTimeout != 30*time.Second || len(ip.Routes) != 2 {
		t.Fatalf("device %q, mtu %d, idle_timeout %v, %d routes", ip.Device, ip.MTU, ip.IdleTimeout, len(ip.Routes))
	}
	if r := ip.Routes[0]; len(r.Prefixes) != 2 || r.Flowspec.ServiceType != ndis.ServiceGuaranteed || r.Flowspec.TokenRate != 125000 ||
		r.Flowspec.PeakBandwidth != 250000 || r.Flowspec.MaxSduSize != 9000 {
		t.Errorf("route 1: %+v", r)
	}
	if r := ip.Routes[1]; r.Node != "gamma" || r.Prefixes[0] != netip.MustParsePrefix("198.18.0.3/32") {
		t.Errorf("route 2: %+v", r)
	}
	if ipvc.DefaultDevice != "condis0" || ipvc.DefaultIdleTimeout != 5*time.Minute {
		t.Errorf("ipvc's defaults are %q and %v: the README and the [ip] reference say condis0 and 5m", ipvc.DefaultDevice, ipvc.DefaultIdleTimeout)
	}
}

// TestLoadIPErrors: each malformed [ip] value is one line naming the key
// at fault, what is wrong and what to write instead.
func TestLoadIPErrors(t *testing.T) {
	section := func(ip, routes string) string {
		return valid + peers + "\n[ip]\n" + ip + "\n" + routes
	}
	const addr = `address = "198.18.0.1/24"` + "\n"
	const route = "[[ip.route]]\nprefixes = [\"198.18.0.2/32\"]\nnode = \"beta\"\n"
	for _, tc := range []struct {
		name, text string
		key        string // want Error.Key
		want       string // the problem after "KEY: "
	}{
		{"no address", section("", route), "ip.address", `missing (this node's address on the interface with its prefix length, e.g. "198.18.0.1/24")`},
		{"bad address", section(`address = "198.18.0.300/24"`, route), "ip.address", `"198.18.0.300/24": want an address with its prefix length, e.g. "198.18.0.1/24"`},
		{"address without prefix", section(`address = "198.18.0.1"`, route), "ip.address", `"198.18.0.1": want an address with its prefix length, e.g. "198.18.0.1/24"`},
		{"bad prefix length", section(`address = "198.18.0.1/33"`, route), "ip.address", `"198.18.0.1/33": want an address with its prefix length, e.g. "198.18.0.1/24"`},
		{"empty device", section(addr+`device = ""`, route), "ip.device", `"": want an interface name of 1 to 15 characters, without '/', ':' or white space`},
		{"long device", section(addr+`device = "condis0123456789"`, route), "ip.device", `"condis0123456789": want an interface name of 1 to 15 characters, without '/', ':' or white space`},
		{"device with slash", section(addr+`device = "a/b"`, route), "ip.device", `"a/b": want an interface name of 1 to 15 characters, without '/', ':' or white space`},
		{"mtu too small", section(addr+`mtu = 575`, route), "ip.mtu", `575: want 576 to 65535 octets, or leave it out to follow the VCs`},
		{"mtu too large", section(addr+`mtu = 65536`, route), "ip.mtu", `65536: want 576 to 65535 octets, or leave it out to follow the VCs`},
		{"bad idle_timeout", section(addr+`idle_timeout = "5 minutes"`, route), "ip.idle_timeout", `"5 minutes": want a positive duration, e.g. "5m" or "30s"`},
		{"zero idle_timeout", section(addr+`idle_timeout = "0s"`, route), "ip.idle_timeout", `"0s": want a positive duration, e.g. "5m" or "30s"`},
		{"negative idle_timeout", section(addr+`idle_timeout = "-1m"`, route), "ip.idle_timeout", `"-1m": want a positive duration, e.g. "5m" or "30s"`},
		{"route without node", section(addr, "[[ip.route]]\nprefixes = [\"198.18.0.2/32\"]\n"), "ip.route[1].node", `missing (the node the prefixes are routed to)`},
		{"route to this node", section(addr, "[[ip.route]]\nprefixes = [\"198.18.0.2/32\"]\nnode = \"alpha\"\n"), "ip.route[1].node", `"alpha" is this node`},
		{"route to an unknown node", section(addr, route+"[[ip.route]]\nprefixes = [\"198.18.0.9/32\"]\nnode = \"delta\"\n"), "ip.route[2].node", `"delta" is not a [[peer]] (add one, or set trust = "cluster")`},
		{"route without prefixes", section(addr, "[[ip.route]]\nnode = \"beta\"\n"), "ip.route[1].prefixes", `missing (the addresses routed to beta, e.g. ["198.18.0.2/32"])`},
		{"bad route prefix", section(addr, "[[ip.route]]\nprefixes = [\"198.18.0.2/32\", \"beta\"]\nnode = \"beta\"\n"), "ip.route[1].prefixes[2]", `"beta": want a prefix, e.g. "198.18.0.0/24"`},
		{"route prefix with host bits", section(addr, "[[ip.route]]\nprefixes = [\"198.18.1.1/24\"]\nnode = \"beta\"\n"), "ip.route[1].prefixes[1]", `"198.18.1.1/24" has host bits set (did you mean "198.18.1.0/24"?)`},
		{"unknown flowspec service", section(addr, route+"flowspec = { service = \"premium\" }\n"), "ip.route[1].flowspec", `unknown service type "premium" (best-effort, controlled-load or guaranteed)`},
		{"flowspec peak below rate", section(addr, route+"flowspec = { service = \"guaranteed\", rate = 2000, peak = 1000 }\n"), "ip.route[1].flowspec", `TokenRate 2000 bytes/s is above PeakBandwidth 1000 bytes/s: the token rate must not exceed the peak`},
		{"prefix routed twice", section(addr, route+"[[ip.route]]\nprefixes = [\"198.18.0.2/32\"]\nnode = \"gamma\"\n"), "ip", `route[2]: prefix 198.18.0.2/32 is already routed by route[1]`},
		{"own address routed", section(addr, "[[ip.route]]\nprefixes = [\"198.18.0.0/24\"]\nnode = \"beta\"\n"), "ip", `route[1]: prefix 198.18.0.0/24 holds this node's own address 198.18.0.1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.text)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c.IP)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error of more than one line: %q", msg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T (%v), want *Error", err, err)
			}
			if ce.File != path || ce.Key != tc.key {
				t.Errorf("File %q, Key %q; want %q, %q (%s)", ce.File, ce.Key, path, tc.key, msg)
			}
			if !strings.HasPrefix(msg, path+": "+tc.key+": ") {
				t.Errorf("error %q does not name the key %s", msg, tc.key)
			}
			if ce.Problem != tc.want {
				t.Errorf("problem\n got %s\nwant %s", ce.Problem, tc.want)
			}
		})
	}
}
