package node

import (
	"strconv"
	"strings"
)

// ConfigKey documents one key of the configuration file.
type ConfigKey struct {
	Key     string // as it is written, with its table: "name", "[[peer]] address"
	Default string // what leaving it out means; "required" if it may not be left out
	Example string // the key as a line of TOML
	Doc     string // what it is
	See     string // the README section that says more, if any
}

// ConfigKeys is the reference of the configuration file: every key Load
// knows, in the order of the package documentation's example. `condis node
// --help` shows it ([ConfigReference]) and so does the README
// ([ConfigReferenceMarkdown]); a test holds both to this table and the
// table to the keys Load accepts.
var ConfigKeys = []ConfigKey{
	{"name", "required", `name = "alpha"`,
		"This node's name: the DNS name in its certificate (a lower-case DNS name).", ""},
	{"listen", "required", `listen = "0.0.0.0:4800"`,
		"The UDP address QUIC listens on, host:port; an empty host is every interface, port 0 a free port. The node dials its peers from the same socket.", ""},
	{"control", "required", `control = "/run/condis/alpha.sock"`,
		"The unix socket that condis listen, call, calls and the other commands talk to: at most 108 octets once resolved (103 outside Linux).", ""},
	{"ca", "required", `ca = "cluster/ca.pem"`,
		"The cluster CA certificate (condis cert init). Relative paths (ca, cert, key, control) are relative to the directory of the configuration file.", ""},
	{"cert", "required", `cert = "cluster/alpha.pem"`,
		"This node's certificate (condis cert issue alpha): its DNS name must be name.", ""},
	{"key", "required", `key = "cluster/alpha.key"`,
		"This node's private key.", ""},
	{"trust", `"peers"`, `trust = "cluster"`,
		`Who may call this node and be called by it: "peers" (only the [[peer]]s) or "cluster" (any node with a certificate of the cluster CA).`, "Trust"},
	{"topology", `"integrated"`, `topology = "split"`,
		`How the call manager sits on the network: "integrated" (a miniport call manager, NdisMCm*) or "split" (a stand-alone call manager bound to a CoNDIS miniport whose medium is QUIC, NdisCm* and MiniportCo*). Peers see the same Q.2931 either way.`, "Topologies"},
	{"address_prefix", `"47.9999.c0d1.0000.0000.0000.0000"`, `address_prefix = "47.9999.c0d1.0001.0000.0000.0000"`,
		"The 13-octet network prefix of this node's ATM address and, unless a [[peer]] has its own, of its peers': 26 hex digits, AFI 47 (ICD), 39 (DCC) or 45 (E.164) first; dots are ignored.", ""},
	{"max_rate", "no limit", `max_rate = 12500000`,
		"The most a call may ask for in either direction, bytes/s (token rate and peak), 1 to 4294967294: a SETUP, ADD PARTY or MODIFY REQUEST asking for more is refused with cause 37, as is a call or QoS change this node's clients ask for.", ""},
	{"metrics", "off", `metrics = "127.0.0.1:9464"`,
		"host:port where the node serves Prometheus metrics at /metrics.", "Metrics"},
	{"capture", "off", `capture = "alpha.pcapng"`,
		"A pcapng file (relative to the config file) the node writes every Q.2931 message it sends or receives to, from start to Close.", "Captures"},
	{"[[peer]] name", "required", `name = "beta"`,
		"A node this one talks to, as its certificate names it; each peer once, never this node.", ""},
	{"[[peer]] address", "required", `address = "192.0.2.7:4800"`,
		"The peer's UDP address, host:port; a host name is looked up when the node starts.", ""},
	{"[[peer]] address_prefix", "this node's", `address_prefix = "39.840f.80ffe1.0000.0000.0002.00"`,
		"The prefix of the peer's ATM address, when it is not this node's.", ""},
	{"[[sap]] service", "required", `service = "echo"`,
		"A service offered here, called as NAME/SERVICE: 1 to " + strconv.Itoa(MaxServiceLen) + " octets of letters, digits, '-', '_' and '.' (it travels in the Q.2931 BHLI). Each service once.", ""},
	{"[[sap]] allow", "every node trust admits", `allow = ["beta"]`,
		`The nodes that may call the service: [[peer]]s, or any node names under trust = "cluster". An empty list allows none.`, ""},
	{"[ip] address", "required in [ip]", `address = "198.18.0.1/24"`,
		"IP over condis: this node's address on its TUN interface, with the prefix length of the network it is on. The [ip] section gives the node the interface; without it, none.", "IP over condis"},
	{"[ip] device", `"condis0"`, `device = "condis0"`,
		"The name of the TUN interface (Linux; the node needs CAP_NET_ADMIN).", "IP over condis"},
	{"[ip] mtu", "follows the VCs", `mtu = 1400`,
		"The interface's MTU, 576 to 65535. Left out, it starts at 1200 (what every QUIC path carries) and follows the VCs: the smallest MaxSduSize among those up.", "IP over condis"},
	{"[ip] idle_timeout", `"5m"`, `idle_timeout = "5m"`,
		"A VC that carried no packet either way for this long is closed; the next packet sets up a new one.", "IP over condis"},
	{"[[ip.route]] prefixes", "required", `prefixes = ["198.18.0.2/32"]`,
		"The addresses routed to the route's node, over VCs set up when the first packet comes; packets from that node are accepted only from them (as WireGuard's AllowedIPs). Incoming IP calls are accepted only from nodes with a route.", "IP over condis"},
	{"[[ip.route]] node", "required", `node = "beta"`,
		`The node the prefixes are routed to: a [[peer]], or any node under trust = "cluster".`, "IP over condis"},
	{"[[ip.route]] flowspec", "best effort", `flowspec = { service = "guaranteed", rate = 12500000, peak = 25000000 }`,
		"The flowspec of the route's VCs, both directions: service, rate, bucket, peak, max_sdu, latency, delay_variation, min_policed (as condis call's flags).", "IP over condis"},
}

// ConfigReference is ConfigKeys as plain text, for `condis node --help`.
func ConfigReference() string {
	var b strings.Builder
	b.WriteString("The configuration file (TOML), every key: its default (or \"required\"),\nan example, and what it is.\n")
	for _, k := range ConfigKeys {
		b.WriteString("\n  " + k.Key + " (" + k.Default + ")\n")
		b.WriteString("      " + k.Example + "\n")
		doc := k.Doc
		if k.See != "" {
			doc = strings.TrimSpace(doc + " See " + k.See + " in the README.")
		}
		for _, line := range wrap(doc, 72) {
			b.WriteString("      " + line + "\n")
		}
	}
	return b.String()
}

// ConfigReferenceMarkdown is ConfigKeys as a Markdown table, for the
// README.
func ConfigReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString("| Key | Default | Example | What it is |\n|---|---|---|---|\n")
	for _, k := range ConfigKeys {
		key := "`" + k.Key + "`"
		if table, name, ok := strings.Cut(k.Key, " "); ok {
			key = "`" + table + "` `" + name + "`"
		}
		def := k.Default
		if strings.HasPrefix(def, `"`) {
			def = "`" + def + "`"
		}
		doc := k.Doc
		if k.See != "" {
			anchor := strings.ReplaceAll(strings.ToLower(k.See), " ", "-")
			doc = strings.TrimSpace(doc + " See [" + k.See + "](#" + anchor + ").")
		}
		b.WriteString("| " + key + " | " + def + " | `" + k.Example + "` | " + doc + " |\n")
	}
	return b.String()
}

// wrap breaks text into lines of at most width octets, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
