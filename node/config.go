// Package node assembles a condis node: its configuration ([Load] reads
// and checks the TOML file that `condis node --config FILE` runs from), the
// running node ([Start]: the mediator, the Q.2931 miniport call manager and
// the QUIC endpoint), and the control plane ([Control]) that `condis listen`,
// `condis call` and `condis calls` talk to over a unix socket.
//
// # Trust
//
// Every node authenticates every other with mutual TLS against the cluster
// CA; a node's name is the DNS name in its certificate. Which authenticated
// nodes a node deals with is its trust setting, and it applies both ways:
//
//   - trust = "peers" (the default): only the nodes in its [[peer]] tables
//     may call it, and it calls only them. A SETUP (or ADD PARTY) from any
//     other node is refused with cause 21, call rejected (the caller's
//     MakeCall fails with NDIS_STATUS_FAILURE), and `condis call` to a node
//     that is not a [[peer]] fails at once naming it.
//   - trust = "cluster": any node holding a certificate of the cluster CA may
//     call it, and it may call any such node. A node that is not a [[peer]]
//     is dialled at its name (a DNS name: its certificate's) on the UDP port
//     this node listens on, or over the link it already has with this node
//     (a node that called it can be called back while its link is up); its
//     ATM address is taken to share this node's prefix.
//
// The [[sap]] allow lists are the finer control on top: with "peers" they
// name [[peer]]s, with "cluster" any node of the cluster. "peers" is the
// default because it is the least a node exposes: a certificate from the
// cluster CA, which may be issued for many purposes, is not enough to reach
// its services, and each side of every possible call is written down in
// both nodes' files.
//
// # Addresses
//
// A node's ATM End System Address (UNI 3.1 §5.1.3) is its address_prefix
// (13 octets: AFI, IDI, HO-DSP), the end system identifier its name gives
// ([q2931.ESI]: 6 octets of SHA-256 of the name) and selector 0. The nodes of
// a cluster share a prefix, so each can work out every other's address from
// its name: a call to node/service carries that node's address as Called
// Party Number. A peer whose prefix is not this node's says so in its
// [[peer]] table (address_prefix). The node logs its address when it
// starts, and `condis calls` shows it.
//
// # The configuration file
//
// A complete example, with every key:
//
//	# alpha.toml
//	name    = "alpha"                    # this node: the DNS name in its certificate
//	listen  = "0.0.0.0:4800"             # UDP address for QUIC (host:port)
//	control = "/run/condis/alpha.sock"   # unix socket for condis call, listen, calls
//
//	# PEM files made by `condis cert init` and `condis cert issue`. Relative
//	# paths are relative to the directory of this file.
//	ca   = "cluster/ca.pem"
//	cert = "cluster/alpha.pem"
//	key  = "cluster/alpha.key"
//
//	# Who may call this node and be called by it: "peers" (the [[peer]]s
//	# below; the default) or "cluster" (any node with a cluster certificate).
//	trust = "peers"
//
//	# How the call manager sits on the network: "integrated" (a miniport
//	# call manager; the default) or "split" (a stand-alone call manager over
//	# a CoNDIS miniport). Peers do not see the difference.
//	topology = "integrated"
//
//	# Write every Q.2931 message the node sends or receives to this pcapng
//	# file, which Wireshark decodes as is (optional; default: none).
//	capture = "/var/lib/condis/alpha.pcapng"
//
//	# The network prefix of this node's ATM address and, unless a [[peer]]
//	# says otherwise, of its peers' (default 47.9999.c0d1.0000.0000.0000.0000).
//	address_prefix = "47.9999.c0d1.0001.0000.0000.0000"
//
//	# Serve Prometheus metrics at http://127.0.0.1:9464/metrics (off when absent).
//	metrics = "127.0.0.1:9464"
//	# The most a call may ask for in either direction, bytes/s (token rate
//	# and peak): calls and QoS changes asking for more are refused with
//	# cause 37, user cell rate not available. Default: no limit.
//	max_rate = 12500000
//
//	# The nodes this one talks to: name (as in its certificate) and UDP address.
//	[[peer]]
//	name    = "beta"
//	address = "192.0.2.7:4800"
//
//	[[peer]]
//	name    = "gamma"
//	address = "gamma.example.net:4800"
//	address_prefix = "39.840f.80ffe1.0000.0000.0002.00"  # gamma's prefix is not ours
//
//	# Services offered here, called as alpha/echo and alpha/billing.
//	[[sap]]
//	service = "echo"       # no allow: every authenticated peer may call it
//
//	[[sap]]
//	service = "billing"
//	allow   = ["beta"]     # only beta may call it
//
// The rules, each checked by Load:
//
//   - name (required): a node name as package pki defines it ([pki.ValidName]:
//     a lower-case DNS name); the DNS name in cert must be the same
//     ([Config.Identity] checks that).
//   - listen (required): host:port with a numeric port; an empty host listens
//     on every interface, port 0 picks a free one. Host names are not looked
//     up by Load.
//   - control (required): the path of the node's unix control socket, at most
//     108 octets once resolved (103 outside Linux: what sockaddr_un holds).
//   - ca, cert, key (required): the cluster CA certificate, this node's
//     certificate and its private key. Load does not read them; see
//     [Config.Identity].
//   - trust (optional): "peers" (default) or "cluster"; see Trust above.
//   - topology (optional): "integrated" (default) or "split"; see
//     [Topology]. The Q.2931 on the wire is the same either way.
//   - capture (optional): a file the node creates (or truncates) when it
//     starts, readable by its owner only, and writes every Q.2931 message
//     it sends or receives to, as pcapng that Wireshark and tshark decode
//     with no preference set (package capture; docs/protocol.md §8). The
//     file is complete once the node has stopped.
//   - address_prefix (optional): 26 hex digits, AFI first (dots between
//     them are ignored), in one of UNI 3.1's private ATM address formats:
//     AFI 47 (ICD: 4 decimal digits follow), 39 (DCC: 3 decimal digits and
//     an f) or 45 (E.164: 15 decimal digits and an f); the rest is the
//     HO-DSP. Default [q2931.DefaultPrefix], 479999c0d10000000000000000: ICD
//     9999, one of the ICDs ISO/IEC 6523 reserves for use by agreement
//     between partners.
//   - metrics (optional): host:port (TCP) where the node serves Prometheus
//     metrics at /metrics (package metrics lists them; so does the README);
//     an empty host listens on every interface, port 0 picks a free one.
//     Absent or "": no metrics (the default). The node logs where it serves
//     them.
//   - max_rate (optional): a whole number of bytes/s, 1 to 4294967294
//     (the largest FLOWSPEC rate short of QOS_NOT_SPECIFIED); absent means
//     no limit. A SETUP, ADD PARTY or MODIFY REQUEST asking for more is
//     refused with cause 37 (NDIS_STATUS_CELLRATE_NOT_AVAILABLE), as is a
//     call or QoS change this node's clients ask for ([mcm.Config.MaxRate]).
//   - [[peer]]: name (required; a node name, not this node's, each peer once,
//     and no two of them nor this node with the same [q2931.ESI]: their ATM
//     addresses would be one), address (required; host:port, port 1 to
//     65535) and address_prefix (optional, as above: the peer's prefix when
//     it is not this node's).
//   - [[sap]]: service (required; 1 to [MaxServiceLen] octets of letters,
//     digits, '-', '_' and '.'; each service once) and allow (optional: the
//     names of the nodes that may call it, each once, [[peer]]s unless trust
//     is "cluster"; absent means every node trust admits, an empty list
//     means none). The service name travels in the user-specific field of
//     the Q.2931 BHLI, hence the 8 octets.
//
// Relative paths (control, ca, cert, key, capture) are resolved against the directory
// of the configuration file, so a node finds its files whatever its working
// directory. Keys are lower case and case-sensitive; a key Load does not know
// is an error, so a misspelt key never goes unnoticed.
//
// Every error is one *[Error] naming the file, the key and the problem, for
// example:
//
//	alpha.toml: peer[2].address: "192.0.2.7": missing port in address (want host:port)
//	alpha.toml: peer[1]: unknown key "adress" (did you mean "address"?)
//	alpha.toml:3: listen: is an integer, want a string
//
// [[peer]] and [[sap]] tables are counted from 1 in the order of the file.
package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// MaxServiceLen is the longest service name: the user-specific information
// of a Q.2931 BHLI.
const MaxServiceLen = uni.MaxBHLIInfo

// maxSocketPath is the longest control socket path, in octets, that Go can
// bind on this platform: sockaddr_un's sun_path holds 108 octets on Linux
// (no terminating NUL needed) and 104 on macOS and the BSDs (NUL included).
var maxSocketPath = func() int {
	if runtime.GOOS == "linux" {
		return 108
	}
	return 103
}()

// Config is a node's configuration, as [Load] read and checked it.
type Config struct {
	File    string // the file it was read from, as given to Load
	Name    string // this node's name
	Listen  string // UDP address to listen on, host:port
	Control string // absolute path of the control socket
	CA      string // absolute path of the cluster CA certificate (PEM)
	Cert    string // absolute path of this node's certificate (PEM)
	Key     string // absolute path of this node's private key (PEM)
	// Trust says which nodes may call this one and be called by it; ""
	// (a Config not made by Load) is TrustPeers.
	Trust Trust
	// Topology is how the node's call manager sits on the network; ""
	// (a Config not made by Load) is TopologyIntegrated.
	Topology Topology
	// AddressPrefix is the network prefix of this node's ATM address, and
	// of every peer's without one of its own; zero (a Config not made by
	// Load) is q2931.DefaultPrefix.
	AddressPrefix q2931.Prefix
	// MaxRate is the most a call may ask for in either direction, bytes/s
	// (mcm.Config.MaxRate); 0: no limit.
	MaxRate uint32
	Peers   []Peer // in the order of the file
	SAPs    []SAP  // in the order of the file

	// Metrics is the TCP address, host:port, where the node serves
	// Prometheus metrics at /metrics; "": it does not.
	Metrics string
	// Capture is the absolute path of the pcapng file the node writes its
	// Q.2931 messages to; "" for none.
	Capture string

	// IP is the [ip] section: IP over condis (package ipvc); nil without
	// one.
	IP *ipvc.Config
}

// Trust is a node's trust setting (see the package documentation).
type Trust string

// Trust settings.
const (
	// TrustPeers: only the [[peer]]s call this node and are called by it.
	TrustPeers Trust = "peers"
	// TrustCluster: any node with a certificate of the cluster CA.
	TrustCluster Trust = "cluster"
)

// Topology is how a node's Q.2931 call manager sits on the network, as
// CoNDIS knows two ways (docs/architecture.md).
type Topology string

// Topologies.
const (
	// TopologyIntegrated: the miniport call manager (package mcm) is both
	// the network's miniport and its call manager (NdisMCm*).
	TopologyIntegrated Topology = "integrated"
	// TopologySplit: a stand-alone call manager (package cm), a protocol
	// driver bound to a CoNDIS miniport whose medium is QUIC (package
	// miniport), signalling over VCs of its own (NdisCm*, MiniportCo*).
	TopologySplit Topology = "split"
)

// Peer is a node this one talks to.
type Peer struct {
	Name    string // its node name, as its certificate states it
	Address string // its UDP address, host:port
	// AddressPrefix is the prefix of its ATM address when that is not
	// this node's; zero: this node's.
	AddressPrefix q2931.Prefix
}

// SAP is a service offered by this node, reachable as NAME/SERVICE.
type SAP struct {
	Service string   // 1 to MaxServiceLen octets
	Allow   []string // the nodes that may call it; nil: every node trust admits
}

// Allows reports whether peer may call the service, as far as its allow
// list goes (trust is [Config.Trusts]).
func (s *SAP) Allows(peer string) bool {
	return s.Allow == nil || slices.Contains(s.Allow, peer)
}

// trust is c.Trust, with the default for a Config not made by Load.
func (c *Config) trust() Trust {
	if c.Trust == "" {
		return TrustPeers
	}
	return c.Trust
}

// topology is c.Topology, with the default for a Config not made by Load.
func (c *Config) topology() Topology {
	if c.Topology == "" {
		return TopologyIntegrated
	}
	return c.Topology
}

// Trusts reports whether node may call this node and be called by it: any
// node under TrustCluster, the [[peer]]s under TrustPeers.
func (c *Config) Trusts(node string) bool {
	if c.trust() == TrustCluster {
		return true
	}
	_, ok := c.Peer(node)
	return ok
}

// prefix is c.AddressPrefix, with the default for a Config not made by
// Load.
func (c *Config) prefix() q2931.Prefix {
	if c.AddressPrefix == (q2931.Prefix{}) {
		return q2931.DefaultPrefix
	}
	return c.AddressPrefix
}

// ATMAddress returns this node's ATM End System Address: its prefix, the
// ESI of its name, selector 0 (q2931.Address).
func (c *Config) ATMAddress() uni.AESA { return q2931.Address(c.prefix(), c.Name) }

// PeerATMAddress returns the ATM End System Address this node calls node
// at: under the prefix of its [[peer]] table if it has one, else under this
// node's.
func (c *Config) PeerATMAddress(node string) uni.AESA {
	if p, ok := c.Peer(node); ok && p.AddressPrefix != (q2931.Prefix{}) {
		return q2931.Address(p.AddressPrefix, node)
	}
	return q2931.Address(c.prefix(), node)
}

// Peer returns the peer called name.
func (c *Config) Peer(name string) (Peer, bool) {
	for _, p := range c.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// SAP returns the SAP of service.
func (c *Config) SAP(service string) (*SAP, bool) {
	for i := range c.SAPs {
		if c.SAPs[i].Service == service {
			return &c.SAPs[i], true
		}
	}
	return nil, false
}

// Identity loads the node's certificate, key and CA ([pki.LoadFiles]) and
// checks that the certificate is this node's. Errors are *[Error]s naming
// the configuration file and the key of the file at fault.
func (c *Config) Identity() (*pki.Identity, error) {
	id, err := pki.LoadFiles(c.Cert, c.Key, c.CA)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "pki: ")
		// The key at fault is the one whose file the error names first
		// ("KEYFILE does not hold the key of CERTFILE": key).
		key, at, n := "cert", len(msg), 0
		for _, f := range []struct{ key, path string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
			if i := strings.Index(msg, f.path); i >= 0 && (i < at || i == at && len(f.path) > n) {
				key, at, n = f.key, i, len(f.path)
			}
		}
		return nil, &Error{File: c.File, Key: key, Problem: msg}
	}
	if id.Name != c.Name {
		return nil, &Error{File: c.File, Key: "cert", Problem: fmt.Sprintf("%s is the certificate of node %q, not of %q (name)", c.Cert, id.Name, c.Name)}
	}
	return id, nil
}

// Error is a problem with a configuration file.
type Error struct {
	File    string // the configuration file
	Line    int    // its line, when known (syntax and type errors); else 0
	Key     string // the key at fault, e.g. "listen", "peer[2].address"; "" for the whole file
	Problem string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// The file as TOML sees it.
type fileConfig struct {
	Name    string     `toml:"name"`
	Listen  string     `toml:"listen"`
	Control string     `toml:"control"`
	CA      string     `toml:"ca"`
	Cert    string     `toml:"cert"`
	Key     string     `toml:"key"`
	Trust   *string    `toml:"trust"`
	Topo    *string    `toml:"topology"`
	Prefix  *string    `toml:"address_prefix"`
	Metrics string     `toml:"metrics"`
	MaxRate *int64     `toml:"max_rate"`
	Peer    []filePeer `toml:"peer"`
	SAP     []fileSAP  `toml:"sap"`
	Capture *string    `toml:"capture"`
	IP      *fileIP    `toml:"ip"`
}

type fileIP struct {
	Address     string      `toml:"address"`
	Device      *string     `toml:"device"`
	MTU         *int64      `toml:"mtu"`
	IdleTimeout *string     `toml:"idle_timeout"`
	Route       []fileRoute `toml:"route"`
}

type fileRoute struct {
	Prefixes []string      `toml:"prefixes"`
	Node     string        `toml:"node"`
	Flowspec *fileFlowspec `toml:"flowspec"`
}

// fileFlowspec is a FLOWSPEC as a TOML table: the keys of the control
// protocol's JSON form (Flowspec).
type fileFlowspec struct {
	Service string `toml:"service"`
	Rate    uint32 `toml:"rate"`
	Bucket  uint32 `toml:"bucket"`
	Peak    uint32 `toml:"peak"`
	MaxSDU  uint32 `toml:"max_sdu"`
	Latency uint32 `toml:"latency"`
	Jitter  uint32 `toml:"delay_variation"`
	MinSize uint32 `toml:"min_policed"`
}

type filePeer struct {
	Name    string  `toml:"name"`
	Address string  `toml:"address"`
	Prefix  *string `toml:"address_prefix"`
}

type fileSAP struct {
	Service string   `toml:"service"`
	Allow   []string `toml:"allow"`
}

// The keys of each table.
var (
	topKeys      = []string{"name", "listen", "control", "ca", "cert", "key", "trust", "topology", "address_prefix", "max_rate", "metrics", "capture", "peer", "sap", "ip"}
	peerKeys     = []string{"name", "address", "address_prefix"}
	sapKeys      = []string{"service", "allow"}
	ipKeys       = []string{"address", "device", "mtu", "idle_timeout", "route"}
	ipRouteKeys  = []string{"prefixes", "node", "flowspec"}
	flowspecKeys = []string{"service", "rate", "bucket", "peak", "max_sdu", "latency", "delay_variation", "min_policed"}
)

// Load reads and checks the node configuration file path. See the package
// documentation for the format. Every error is an *[Error] naming one
// problem: a syntax or type error first, then the first unknown key in the
// order of the file, then the values, key by key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: path, Problem: err.Error()}
	}
	return parse(path, string(data))
}

// parse is Load after reading the file.
func parse(path, data string) (*Config, error) {
	fail := func(key, format string, args ...any) (*Config, error) {
		return nil, &Error{File: path, Key: key, Problem: fmt.Sprintf(format, args...)}
	}

	var f fileConfig
	md, err := toml.Decode(data, &f)
	if err != nil {
		return nil, decodeError(path, err)
	}
	if err := unknownKey(path, md); err != nil {
		return nil, err
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return fail("", "%v", err)
	}
	dir := filepath.Dir(abs)
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}

	c := &Config{File: path}

	if f.Name == "" {
		return fail("name", "missing (this node's name, as in its certificate)")
	}
	if err := pki.ValidName(f.Name); err != nil {
		return fail("name", "%s", nameProblem(err))
	}
	c.Name = f.Name

	if f.Listen == "" {
		return fail("listen", `missing (the UDP address to listen on, e.g. "0.0.0.0:4800")`)
	}
	if err := checkHostPort(f.Listen, true); err != nil {
		return fail("listen", "%q: %v", f.Listen, err)
	}
	c.Listen = f.Listen

	if f.Control == "" {
		return fail("control", `missing (the path of the control socket, e.g. "/run/condis/%s.sock")`, f.Name)
	}
	c.Control = resolve(f.Control)
	if len(c.Control) > maxSocketPath {
		return fail("control", "%q is %d octets long, more than a unix socket path may be (%d)", c.Control, len(c.Control), maxSocketPath)
	}

	for _, fp := range []struct {
		key, val, what string
		dst            *string
	}{
		{"ca", f.CA, "the cluster CA certificate, ca.pem", &c.CA},
		{"cert", f.Cert, "this node's certificate, " + f.Name + ".pem", &c.Cert},
		{"key", f.Key, "this node's private key, " + f.Name + ".key", &c.Key},
	} {
		if fp.val == "" {
			return fail(fp.key, "missing (%s)", fp.what)
		}
		*fp.dst = resolve(fp.val)
	}

	c.Trust = TrustPeers
	if f.Trust != nil {
		switch t := Trust(*f.Trust); t {
		case TrustPeers, TrustCluster:
			c.Trust = t
		default:
			return fail("trust", `%q: want "peers" (only the [[peer]]s call and are called) or "cluster" (any node with a certificate of the cluster CA)`, t)
		}
	}

	c.Topology = TopologyIntegrated
	if f.Topo != nil {
		switch t := Topology(*f.Topo); t {
		case TopologyIntegrated, TopologySplit:
			c.Topology = t
		default:
			return fail("topology", `%q: want "integrated" (a miniport call manager) or "split" (a stand-alone call manager over a CoNDIS miniport)`, t)
		}
	}

	if f.Capture != nil {
		if *f.Capture == "" {
			return fail("capture", "empty (a pcapng file to write the Q.2931 messages to; leave the key out for none)")
		}
		c.Capture = resolve(*f.Capture)
	}

	c.AddressPrefix = q2931.DefaultPrefix
	if f.Prefix != nil {
		p, err := q2931.ParsePrefix(*f.Prefix)
		if err != nil {
			return fail("address_prefix", "%s", prefixProblem(err))
		}
		c.AddressPrefix = p
	}

	if f.Metrics != "" {
		if err := checkHostPort(f.Metrics, true); err != nil {
			return fail("metrics", "%q: %v", f.Metrics, err)
		}
		c.Metrics = f.Metrics
	}
	if f.MaxRate != nil {
		if r := *f.MaxRate; r < 1 || r >= int64(ndis.QoSNotSpecified) {
			return fail("max_rate", "%d: want bytes/s, 1 to %d", r, ndis.QoSNotSpecified-1)
		}
		c.MaxRate = uint32(*f.MaxRate)
	}

	peers := make(map[string]int) // name -> index from 1
	// Two nodes with one ESI would have one ATM address.
	esis := map[[q2931.ESILen]byte]string{q2931.ESI(c.Name): fmt.Sprintf("this node (%q)", c.Name)}
	for i, p := range f.Peer {
		key := fmt.Sprintf("peer[%d]", i+1)
		if p.Name == "" {
			return fail(key+".name", "missing")
		}
		if err := pki.ValidName(p.Name); err != nil {
			return fail(key+".name", "%s", nameProblem(err))
		}
		if p.Name == c.Name {
			return fail(key+".name", "%q is this node's own name", p.Name)
		}
		if j, dup := peers[p.Name]; dup {
			return fail(key+".name", "%q is already peer[%d]", p.Name, j)
		}
		peers[p.Name] = i + 1
		esi := q2931.ESI(p.Name)
		if other, dup := esis[esi]; dup {
			return fail(key+".name", "%q has the ESI of %s (%x): one of the two nodes needs another name", p.Name, other, esi)
		}
		esis[esi] = fmt.Sprintf("%s (%q)", key, p.Name)
		if p.Address == "" {
			return fail(key+".address", `missing (the peer's UDP address, host:port)`)
		}
		if err := checkHostPort(p.Address, false); err != nil {
			return fail(key+".address", "%q: %v", p.Address, err)
		}
		peer := Peer{Name: p.Name, Address: p.Address}
		if p.Prefix != nil {
			if peer.AddressPrefix, err = q2931.ParsePrefix(*p.Prefix); err != nil {
				return fail(key+".address_prefix", "%s", prefixProblem(err))
			}
		}
		c.Peers = append(c.Peers, peer)
	}

	services := make(map[string]int)
	for i, s := range f.SAP {
		key := fmt.Sprintf("sap[%d]", i+1)
		if s.Service == "" {
			return fail(key+".service", "missing")
		}
		if err := checkService(s.Service); err != nil {
			return fail(key+".service", "%q: %v", s.Service, err)
		}
		if j, dup := services[s.Service]; dup {
			return fail(key+".service", "%q is already sap[%d]", s.Service, j)
		}
		services[s.Service] = i + 1
		sap := SAP{Service: s.Service}
		if s.Allow != nil { // allow = [] is there, and allows no one
			sap.Allow = make([]string, 0, len(s.Allow))
		}
		for k, name := range s.Allow {
			akey := fmt.Sprintf("%s.allow[%d]", key, k+1)
			switch {
			case name == c.Name:
				return fail(akey, "%q is this node, not a peer", name)
			case c.Trust == TrustCluster && pki.ValidName(name) != nil:
				return fail(akey, "%s", nameProblem(pki.ValidName(name)))
			case c.Trust == TrustPeers && peers[name] == 0:
				return fail(akey, `%q is not a [[peer]] (add one, or set trust = "cluster")`, name)
			case slices.Contains(sap.Allow, name):
				return fail(akey, "%q is listed twice", name)
			}
			sap.Allow = append(sap.Allow, name)
		}
		c.SAPs = append(c.SAPs, sap)
	}

	if f.IP != nil {
		ip, err := parseIP(path, c, f.IP)
		if err != nil {
			return nil, err
		}
		c.IP = ip
	}
	return c, nil
}

// parseIP checks the [ip] section.
func parseIP(path string, c *Config, f *fileIP) (*ipvc.Config, error) {
	fail := func(key, format string, args ...any) (*ipvc.Config, error) {
		return nil, &Error{File: path, Key: key, Problem: fmt.Sprintf(format, args...)}
	}
	ip := &ipvc.Config{Device: ipvc.DefaultDevice, IdleTimeout: ipvc.DefaultIdleTimeout}
	if f.Address == "" {
		return fail("ip.address", `missing (this node's address on the interface with its prefix length, e.g. "198.18.0.1/24")`)
	}
	a, err := netip.ParsePrefix(f.Address)
	if err != nil {
		return fail("ip.address", `%q: want an address with its prefix length, e.g. "198.18.0.1/24"`, f.Address)
	}
	ip.Address = a
	if f.Device != nil {
		d := *f.Device
		if d == "" || len(d) > 15 || strings.ContainsAny(d, "/: \t") || d == "." || d == ".." {
			return fail("ip.device", "%q: want an interface name of 1 to 15 characters, without '/', ':' or white space", d)
		}
		ip.Device = d
	}
	if f.MTU != nil {
		if m := *f.MTU; m < 576 || m > ipvc.MaxMTU {
			return fail("ip.mtu", "%d: want 576 to %d octets, or leave it out to follow the VCs", m, ipvc.MaxMTU)
		}
		ip.MTU = int(*f.MTU)
	}
	if f.IdleTimeout != nil {
		d, err := time.ParseDuration(*f.IdleTimeout)
		if err != nil || d <= 0 {
			return fail("ip.idle_timeout", `%q: want a positive duration, e.g. "5m" or "30s"`, *f.IdleTimeout)
		}
		ip.IdleTimeout = d
	}
	for i, r := range f.Route {
		key := fmt.Sprintf("ip.route[%d]", i+1)
		if r.Node == "" {
			return fail(key+".node", "missing (the node the prefixes are routed to)")
		}
		if r.Node == c.Name {
			return fail(key+".node", "%q is this node", r.Node)
		}
		if !c.Trusts(r.Node) {
			return fail(key+".node", `%q is not a [[peer]] (add one, or set trust = "cluster")`, r.Node)
		}
		if len(r.Prefixes) == 0 {
			return fail(key+".prefixes", `missing (the addresses routed to %s, e.g. ["198.18.0.2/32"])`, r.Node)
		}
		route := ipvc.Route{Node: r.Node}
		for k, s := range r.Prefixes {
			pkey := fmt.Sprintf("%s.prefixes[%d]", key, k+1)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fail(pkey, `%q: want a prefix, e.g. "198.18.0.0/24"`, s)
			}
			if p.Masked() != p {
				return fail(pkey, "%q has host bits set (did you mean %q?)", s, p.Masked().String())
			}
			route.Prefixes = append(route.Prefixes, p)
		}
		if fs := r.Flowspec; fs != nil {
			spec := Flowspec{Service: fs.Service, Rate: fs.Rate, Bucket: fs.Bucket, Peak: fs.Peak, MaxSDU: fs.MaxSDU,
				Latency: fs.Latency, Jitter: fs.Jitter, MinSize: fs.MinSize}
			nf, err := spec.Ndis()
			if err == nil {
				err = q2931.CheckFlowspec(nf)
			}
			if err != nil {
				return fail(key+".flowspec", "%s", strings.TrimPrefix(err.Error(), "mcm: "))
			}
			route.Flowspec = nf
		} else {
			route.Flowspec, _ = (*Flowspec)(nil).Ndis()
		}
		ip.Routes = append(ip.Routes, route)
	}
	if err := ip.Check(); err != nil {
		return fail("ip", "%s", strings.TrimPrefix(err.Error(), "ip "))
	}
	return ip, nil
}

// nameProblem is what pki says about a bad name, without its prefix and the
// name (the error shows it).
func nameProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "pki: ")
}

// prefixProblem is what mcm says about a bad address prefix, without its
// prefix.
func prefixProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "q2931: ")
}

// checkHostPort checks a host:port address with a numeric port; listen
// allows an empty host and port 0.
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			if strings.Contains(ae.Err, "too many colons") {
				return fmt.Errorf("%s (want host:port; an IPv6 host goes in brackets: [2001:db8::1]:4800)", ae.Err)
			}
			return fmt.Errorf("%s (want host:port)", ae.Err)
		}
		return err
	}
	if host == "" && !listen {
		return errors.New("missing host (want host:port)")
	}
	if strings.ContainsAny(host, " \t") {
		return errors.New("the host contains white space")
	}
	lo := 1
	if listen {
		lo = 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || int(n) < lo {
		return fmt.Errorf("port %q is not a number from %d to 65535", port, lo)
	}
	return nil
}

// checkService checks a service name.
func checkService(s string) error { return q2931.CheckServiceName(s) }

// unknownKey returns an *Error for the first key of the file, in the file's
// order, that is not in the schema: one toml left undecoded, or one it
// matched to a field case-insensitively ("Name" for "name").
func unknownKey(path string, md toml.MetaData) error {
	undecoded := make(map[string]bool)
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	index := map[string]int{} // array table -> index from 1 of the current one
	for _, k := range md.Keys() {
		// [[peer]] headers are listed once per table; an inline array of
		// tables (peer = [{...}, {...}]) only once, so it gets no index.
		if len(k) == 1 && (k[0] == "peer" || k[0] == "sap") || len(k) == 2 && k[0] == "ip" && k[1] == "route" {
			name := strings.Join(k, ".")
			if md.Type(k...) == "ArrayHash" {
				index[name]++
			} else {
				index[name] = -1
			}
		}
		var (
			table string
			known []string
			rest  = k
		)
		switch {
		case len(k) > 2 && k[0] == "ip" && k[1] == "route":
			table, rest, known = "ip.route", k[2:], ipRouteKeys
			if n := index[table]; n > 0 {
				table = fmt.Sprintf("%s[%d]", table, n)
			}
			if len(rest) > 1 && rest[0] == "flowspec" {
				table, rest, known = table+".flowspec", rest[1:], flowspecKeys
			}
		case len(k) > 1 && k[0] == "ip":
			table, rest, known = "ip", k[1:], ipKeys
		case len(k) > 1 && (k[0] == "peer" || k[0] == "sap"):
			table, rest = k[0], k[1:]
			known = peerKeys
			if table == "sap" {
				known = sapKeys
			}
			if n := index[table]; n > 0 {
				table = fmt.Sprintf("%s[%d]", table, n)
			}
		default:
			known = topKeys
		}
		if !undecoded[k.String()] && slices.Contains(known, rest[0]) {
			continue
		}
		problem := fmt.Sprintf("unknown key %q", toml.Key(rest).String())
		if s := suggest(rest[0], known); s != "" {
			problem += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return &Error{File: path, Key: table, Problem: problem}
	}
	return nil
}

// suggest returns the known key closest to k, if it is close: equal but for
// case, or within an edit distance of 2 (1 for short keys).
func suggest(k string, known []string) string {
	best, bestD := "", 3
	for _, s := range known {
		if strings.EqualFold(k, s) {
			return s
		}
		d := editDistance(k, s)
		if min(len(k), len(s)) <= 4 && d > 1 {
			continue
		}
		if d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// edits are inserting, deleting or changing an octet and swapping two
// adjacent ones.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// The errors toml.Decode returns for a value of the wrong type are plain
// strings; these turn them into ours.
var (
	reBadType  = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*)"\): incompatible types: TOML value has type (\S+); destination has type (.+)$`)
	reNotTable = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*)"\): type mismatch for \S+: expected table but found (\S+)$`)
)

// decodeError turns an error of toml.Decode into an *Error.
func decodeError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Problem: pe.Message}
	}
	msg := err.Error()
	if m := reBadType.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Key: m[2], Problem: fmt.Sprintf("is %s, want %s", tomlType(m[3]), wantType(m[2], m[4]))}
	}
	if m := reNotTable.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Key: m[2], Problem: fmt.Sprintf("holds %s, want tables ([[%s]])", tomlType(m[3]), m[2])}
	}
	return &Error{File: path, Problem: strings.TrimPrefix(msg, "toml: ")}
}

// tomlType names the TOML type of a value of Go type t (as toml.Decode
// prints it).
func tomlType(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "int64":
		return "an integer"
	case t == "float64":
		return "a float"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map["):
		return "a table"
	case strings.HasPrefix(t, "time.") || strings.HasPrefix(t, "toml.Local"):
		return "a date or time"
	}
	return "a " + t
}

// wantType names what key should hold, given the Go type toml decoded into.
func wantType(key, dst string) string {
	switch {
	case key == "peer" || key == "sap":
		return "tables ([[" + key + "]])"
	case dst == "slice":
		return "an array of strings"
	case dst == "string":
		return "a string"
	}
	return dst
}
