package node

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// write writes a configuration file into a new directory and returns its
// path.
func write(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// docExample returns the example file of the package documentation.
func docExample(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for line := range strings.Lines(string(src)) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "//\t# alpha.toml":
			in = true
		case in && line == "//":
			out = append(out, "")
			continue
		case in && !strings.HasPrefix(line, "//\t"):
			return strings.Join(out, "\n") + "\n"
		}
		if in {
			out = append(out, strings.TrimPrefix(line, "//\t"))
		}
	}
	t.Fatal("no example in the package documentation")
	return ""
}

func TestLoadDocExample(t *testing.T) {
	path := write(t, docExample(t))
	dir := filepath.Dir(path)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:          path,
		Name:          "alpha",
		Listen:        "0.0.0.0:4800",
		Control:       "/run/condis/alpha.sock",
		CA:            filepath.Join(dir, "cluster", "ca.pem"),
		Cert:          filepath.Join(dir, "cluster", "alpha.pem"),
		Key:           filepath.Join(dir, "cluster", "alpha.key"),
		Trust:         TrustPeers,
		Topology:      TopologyIntegrated,
		AddressPrefix: q2931.Prefix{0x47, 0x99, 0x99, 0xc0, 0xd1, 0x00, 0x01},
		MaxRate:       12_500_000,
		Peers: []Peer{
			{Name: "beta", Address: "192.0.2.7:4800"},
			{Name: "gamma", Address: "gamma.example.net:4800",
				AddressPrefix: q2931.Prefix{0x39, 0x84, 0x0f, 0x80, 0xff, 0xe1, 0, 0, 0, 0, 0, 0x02, 0x00}},
		},
		SAPs: []SAP{
			{Service: "echo"},
			{Service: "billing", Allow: []string{"beta"}},
		},
		Metrics: "127.0.0.1:9464",
		Capture: "/var/lib/condis/alpha.pcapng",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", c, want)
	}

	echo, ok := c.SAP("echo")
	if !ok || !echo.Allows("beta") || !echo.Allows("gamma") {
		t.Errorf("echo: %v %+v: want every peer allowed", ok, echo)
	}
	billing, ok := c.SAP("billing")
	if !ok || !billing.Allows("beta") || billing.Allows("gamma") {
		t.Errorf("billing: %v %+v: want beta only", ok, billing)
	}
	if _, ok := c.SAP("nope"); ok {
		t.Error(`SAP("nope") found`)
	}
	if p, ok := c.Peer("gamma"); !ok || p.Address != "gamma.example.net:4800" {
		t.Errorf(`Peer("gamma") = %+v, %v`, p, ok)
	}
	if _, ok := c.Peer("alpha"); ok {
		t.Error(`Peer("alpha") found: the node is not its own peer`)
	}
	// alpha's, beta's and gamma's ESIs: sha256 of the names, 0x02 set in
	// the first octet (f44e... -> f64e...; 8ed3... and be9d... stay).
	for _, tc := range []struct {
		got  uni.AESA
		want string
	}{
		{c.ATMAddress(), "479999c0d10001000000000000.8ed3f6ad685b.00"},
		{c.PeerATMAddress("beta"), "479999c0d10001000000000000.f64e64e75f39.00"},
		{c.PeerATMAddress("gamma"), "39840f80ffe100000000000200.be9d587defa1.00"},
		{c.PeerATMAddress("delta"), "479999c0d10001000000000000." + esiHex("delta") + ".00"},
	} {
		if tc.got.String() != tc.want {
			t.Errorf("address %v, want %s", tc.got, tc.want)
		}
	}
}

func esiHex(name string) string {
	e := q2931.ESI(name)
	return hex.EncodeToString(e[:])
}

// TestLoadVariants: valid files beyond the documentation's example.
func TestLoadVariants(t *testing.T) {
	t.Run("minimal", func(t *testing.T) {
		path := write(t, `name = "a"
listen = ":0"
control = "a.sock"
ca = "/etc/condis/ca.pem"
cert = "../a.pem"
key = "./keys/a.key"
`)
		dir := filepath.Dir(path)
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Control != filepath.Join(dir, "a.sock") || c.CA != "/etc/condis/ca.pem" ||
			c.Cert != filepath.Join(filepath.Dir(dir), "a.pem") || c.Key != filepath.Join(dir, "keys", "a.key") {
			t.Errorf("paths not resolved against %s: %+v", dir, c)
		}
		if c.Peers != nil || c.SAPs != nil {
			t.Errorf("peers %v, saps %v: want none", c.Peers, c.SAPs)
		}
		if c.Trust != TrustPeers || c.AddressPrefix != q2931.DefaultPrefix || c.Topology != TopologyIntegrated {
			t.Errorf("trust %q, prefix %v, topology %q: want the defaults, peers, %v and integrated", c.Trust, c.AddressPrefix, c.Topology, q2931.DefaultPrefix)
		}
	})
	t.Run("topology split", func(t *testing.T) {
		c, err := Load(write(t, `name = "a"
listen = ":0"
control = "a.sock"
ca = "ca.pem"
cert = "a.pem"
key = "a.key"
topology = "split"
`))
		if err != nil {
			t.Fatal(err)
		}
		if c.Topology != TopologySplit {
			t.Errorf("topology %q, want %q", c.Topology, TopologySplit)
		}
	})
	t.Run("trust cluster", func(t *testing.T) {
		path := write(t, `name = "a"
listen = ":0"
control = "a.sock"
ca = "ca.pem"
cert = "a.pem"
key = "a.key"
trust = "cluster"
address_prefix = "45.000012125551212F.00000001"
[[peer]]
name = "b"
address = "b:1"
address_prefix = "45000012125551212f00000001"
[[sap]]
service = "echo"
allow = ["b", "c.example"]
`)
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want := q2931.Prefix{0x45, 0x00, 0x00, 0x12, 0x12, 0x55, 0x51, 0x21, 0x2f, 0, 0, 0, 1}
		if c.Trust != TrustCluster || c.AddressPrefix != want || c.Peers[0].AddressPrefix != want {
			t.Errorf("trust %q, prefix %v, peer's %v", c.Trust, c.AddressPrefix, c.Peers[0].AddressPrefix)
		}
		// Any node of the cluster may call; the allow list may name nodes
		// that are not [[peer]]s.
		for _, tc := range []struct {
			node, service string
			want          bool
		}{{"b", "echo", true}, {"c.example", "echo", true}, {"d", "echo", false}, {"d", "other", true}} {
			if got := c.Authorize(tc.node, tc.service); got != tc.want || !c.Trusts(tc.node) {
				t.Errorf("Authorize(%s, %s) = %v, Trusts %v; want %v, true", tc.node, tc.service, got, c.Trusts(tc.node), tc.want)
			}
		}
	})
	t.Run("trust peers", func(t *testing.T) {
		path := write(t, valid+"trust = \"peers\"\n"+peers+"[[sap]]\nservice = \"echo\"\nallow = [\"beta\"]\n")
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			node, service string
			trusts, want  bool
		}{{"beta", "echo", true, true}, {"gamma", "echo", true, false}, {"gamma", "other", true, true}, {"delta", "other", false, false}} {
			if got, tr := c.Authorize(tc.node, tc.service), c.Trusts(tc.node); got != tc.want || tr != tc.trusts {
				t.Errorf("Authorize(%s, %s) = %v, Trusts %v; want %v, %v", tc.node, tc.service, got, tr, tc.want, tc.trusts)
			}
		}
	})
	t.Run("relative config path", func(t *testing.T) {
		path := write(t, `name = "a"
listen = "127.0.0.1:4800"
control = "a.sock"
ca = "ca.pem"
cert = "a.pem"
key = "a.key"
`)
		t.Chdir(filepath.Dir(path))
		c, err := Load("node.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c.File != "node.toml" || c.CA != filepath.Join(filepath.Dir(path), "ca.pem") {
			t.Errorf("File %q, CA %q", c.File, c.CA)
		}
	})
	t.Run("empty allow and inline tables", func(t *testing.T) {
		path := write(t, `name = "a.example"
listen = "[::1]:4800"
control = "/run/a.sock"
ca = "ca.pem"
cert = "a.pem"
key = "a.key"
peer = [{name = "b", address = "[2001:db8::2]:4800"}, {name = "c-1", address = "c:1"}]
sap = [{service = "local", allow = []}, {service = "Echo_1.x", allow = ["c-1", "b"]}]
`)
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		local, _ := c.SAP("local")
		if local.Allow == nil || local.Allows("b") {
			t.Errorf("allow = [] gave %#v: want an empty, non-nil list allowing no one", local.Allow)
		}
		if e, _ := c.SAP("Echo_1.x"); !reflect.DeepEqual(e.Allow, []string{"c-1", "b"}) {
			t.Errorf("Echo_1.x allows %v", e.Allow)
		}
		if len(c.Peers) != 2 || c.Peers[0].Address != "[2001:db8::2]:4800" {
			t.Errorf("peers %v", c.Peers)
		}
	})
}

// valid is a correct file that the error cases below change.
const valid = `name = "alpha"
listen = "0.0.0.0:4800"
control = "/run/alpha.sock"
ca = "ca.pem"
cert = "alpha.pem"
key = "alpha.key"
`

const peers = `
[[peer]]
name = "beta"
address = "192.0.2.7:4800"

[[peer]]
name = "gamma"
address = "gamma:4800"
`

func TestLoadErrors(t *testing.T) {
	without := func(key string) string {
		var b strings.Builder
		for line := range strings.Lines(valid) {
			if !strings.HasPrefix(line, key+" ") {
				b.WriteString(line)
			}
		}
		return b.String()
	}
	with := func(key, value string) string {
		return without(key) + key + " = " + value + "\n"
	}
	long := "/" + strings.Repeat("d", maxSocketPath) + ".sock"

	for _, tc := range []struct {
		name, text string
		key        string // want Error.Key
		want       string // the error after "FILE" (which may be followed by ":LINE")
	}{
		// Syntax and types.
		{"syntax", "name = \"alpha\nlisten = 1\n", "name", ":1: name: strings cannot contain newlines"},
		{"duplicate key", valid + "name = \"beta\"\n", "name", ":7: name: Key 'name' has already been defined."},
		{"string is integer", with("listen", "4800"), "listen", ":6: listen: is an integer, want a string"},
		{"string is boolean", with("control", "true"), "control", ":6: control: is a boolean, want a string"},
		{"string is table", with("name", "{a = 1}"), "name", ":6: name: is a table, want a string"},
		{"string is array", valid + peers + "[[peer]]\nname = [\"x\"]\n", "peer.name", ":16: peer.name: is an array, want a string"},
		{"peer is string", valid + "peer = \"beta\"\n", "peer", ":7: peer: is a string, want tables ([[peer]])"},
		{"peer is table", valid + "[peer]\nname = \"beta\"\n", "peer", ":7: peer: is a table, want tables ([[peer]])"},
		{"peer holds integers", valid + "peer = [1, 2]\n", "peer", ":7: peer: holds an integer, want tables ([[peer]])"},
		{"allow is string", valid + peers + "[[sap]]\nservice = \"echo\"\nallow = \"beta\"\n", "sap.allow", ":17: sap.allow: is a string, want an array of strings"},

		{"max_rate is string", valid + "max_rate = \"fast\"\n", "max_rate", ":7: max_rate: is a string, want integer"},
		{"max_rate zero", valid + "max_rate = 0\n", "max_rate", ": max_rate: 0: want bytes/s, 1 to 4294967294"},
		{"max_rate negative", valid + "max_rate = -5\n", "max_rate", ": max_rate: -5: want bytes/s, 1 to 4294967294"},
		{"max_rate too large", valid + "max_rate = 4294967295\n", "max_rate", ": max_rate: 4294967295: want bytes/s, 1 to 4294967294"},

		// Unknown keys.
		{"unknown key", valid + "nme = \"x\"\n", "", `: unknown key "nme" (did you mean "name"?)`},
		{"unknown key, no suggestion", valid + "colour = \"blue\"\n", "", `: unknown key "colour"`},
		{"key in upper case", "Name = \"alpha\"\n" + without("name"), "", `: unknown key "Name" (did you mean "name"?)`},
		{"unknown table", valid + "[extra]\nk = 1\n", "", `: unknown key "extra"`},
		{"misspelt table", valid + "[[peers]]\nname = \"beta\"\n", "", `: unknown key "peers" (did you mean "peer"?)`},
		{"unknown key in second peer", valid + peers + "adress = \"x:1\"\n", "peer[2]", `: peer[2]: unknown key "adress" (did you mean "address"?)`},
		{"upper case in first peer", valid + "[[peer]]\nName = \"beta\"\naddress = \"b:1\"\n", "peer[1]", `: peer[1]: unknown key "Name" (did you mean "name"?)`},
		{"unknown key in inline peer", valid + "peer = [{name = \"b\", address = \"b:1\"}, {name = \"c\", adress = \"c:1\"}]\n", "peer", `: peer: unknown key "adress" (did you mean "address"?)`},
		{"unknown dotted key in sap", valid + "[[sap]]\nservice = \"echo\"\nbogus.x = 1\n", "sap[1]", `: sap[1]: unknown key "bogus.x"`},
		{"unknown key in sap", valid + "[[sap]]\nservice = \"echo\"\n[[sap]]\nservice = \"time\"\nallowed = []\n", "sap[2]", `: sap[2]: unknown key "allowed" (did you mean "allow"?)`},
		{"unknown before bad value", "name = \"\"\nnmae = \"a\"\n", "", `: unknown key "nmae" (did you mean "name"?)`},

		// name.
		{"name missing", without("name"), "name", ": name: missing (this node's name, as in its certificate)"},
		{"name empty", with("name", `""`), "name", ": name: missing (this node's name, as in its certificate)"},
		{"name upper case", with("name", `"Alpha"`), "name", `: name: node name "Alpha": character 'A' is not a lower-case letter, digit, '-' or '.'`},
		{"name with hyphen at the end", with("name", `"alpha-"`), "name", `: name: node name "alpha-": a label starts or ends with '-'`},
		{"name with empty label", with("name", `"a..b"`), "name", `: name: node name "a..b": empty label`},

		// listen.
		{"listen missing", without("listen"), "listen", `: listen: missing (the UDP address to listen on, e.g. "0.0.0.0:4800")`},
		{"listen without port", with("listen", `"0.0.0.0"`), "listen", `: listen: "0.0.0.0": missing port in address (want host:port)`},
		{"listen bare IPv6", with("listen", `"::1:4800"`), "listen", `: listen: "::1:4800": too many colons in address (want host:port; an IPv6 host goes in brackets: [2001:db8::1]:4800)`},
		{"listen named port", with("listen", `"0.0.0.0:condis"`), "listen", `: listen: "0.0.0.0:condis": port "condis" is not a number from 0 to 65535`},
		{"listen port too big", with("listen", `":65536"`), "listen", `: listen: ":65536": port "65536" is not a number from 0 to 65535`},
		{"listen empty port", with("listen", `"host:"`), "listen", `: listen: "host:": port "" is not a number from 0 to 65535`},

		// control.
		{"control missing", without("control"), "control", `: control: missing (the path of the control socket, e.g. "/run/condis/alpha.sock")`},
		{"control too long", with("control", `"`+long+`"`), "control", `: control: "` + long + `" is ` + strconv.Itoa(len(long)) + ` octets long, more than a unix socket path may be (` + strconv.Itoa(maxSocketPath) + `)`},

		// ca, cert, key.
		{"ca missing", without("ca"), "ca", ": ca: missing (the cluster CA certificate, ca.pem)"},
		{"cert missing", without("cert"), "cert", ": cert: missing (this node's certificate, alpha.pem)"},
		{"key missing", with("key", `""`), "key", ": key: missing (this node's private key, alpha.key)"},

		// [[peer]].
		{"peer name missing", valid + peers + "[[peer]]\naddress = \"x:1\"\n", "peer[3].name", ": peer[3].name: missing"},
		{"peer name invalid", valid + "[[peer]]\nname = \"be ta\"\naddress = \"x:1\"\n", "peer[1].name", `: peer[1].name: node name "be ta": character ' ' is not a lower-case letter, digit, '-' or '.'`},
		{"peer is this node", valid + "[[peer]]\nname = \"alpha\"\naddress = \"x:1\"\n", "peer[1].name", `: peer[1].name: "alpha" is this node's own name`},
		{"peer twice", valid + peers + "[[peer]]\nname = \"beta\"\naddress = \"x:1\"\n", "peer[3].name", `: peer[3].name: "beta" is already peer[1]`},
		{"peer address missing", valid + "[[peer]]\nname = \"beta\"\n", "peer[1].address", ": peer[1].address: missing (the peer's UDP address, host:port)"},
		{"peer address without port", valid + "[[peer]]\nname = \"beta\"\naddress = \"192.0.2.7\"\n", "peer[1].address", `: peer[1].address: "192.0.2.7": missing port in address (want host:port)`},
		{"peer address without host", valid + "[[peer]]\nname = \"beta\"\naddress = \":4800\"\n", "peer[1].address", `: peer[1].address: ":4800": missing host (want host:port)`},
		{"peer address port 0", valid + "[[peer]]\nname = \"beta\"\naddress = \"beta:0\"\n", "peer[1].address", `: peer[1].address: "beta:0": port "0" is not a number from 1 to 65535`},
		{"peer address with space", valid + "[[peer]]\nname = \"beta\"\naddress = \"be ta:1\"\n", "peer[1].address", `: peer[1].address: "be ta:1": the host contains white space`},

		// [[sap]].
		{"service missing", valid + "[[sap]]\nallow = []\n", "sap[1].service", ": sap[1].service: missing"},
		{"service too long", valid + "[[sap]]\nservice = \"echo-service\"\n", "sap[1].service", `: sap[1].service: "echo-service": 12 octets, more than the 8 a Q.2931 BHLI carries`},
		{"service of 9 octets", valid + "[[sap]]\nservice = \"ninechars\"\n", "sap[1].service", `: sap[1].service: "ninechars": 9 octets, more than the 8 a Q.2931 BHLI carries`},
		{"service with slash", valid + "[[sap]]\nservice = \"a/b\"\n", "sap[1].service", `: sap[1].service: "a/b": character '/' is not a letter, digit, '-', '_' or '.'`},
		{"service twice", valid + "[[sap]]\nservice = \"echo\"\n[[sap]]\nservice = \"time\"\n[[sap]]\nservice = \"echo\"\n", "sap[3].service", `: sap[3].service: "echo" is already sap[1]`},
		{"allow unknown peer", valid + peers + "[[sap]]\nservice = \"echo\"\nallow = [\"beta\", \"delta\"]\n", "sap[1].allow[2]", `: sap[1].allow[2]: "delta" is not a [[peer]] (add one, or set trust = "cluster")`},
		{"allow without peers", valid + "[[sap]]\nservice = \"echo\"\nallow = [\"beta\"]\n", "sap[1].allow[1]", `: sap[1].allow[1]: "beta" is not a [[peer]] (add one, or set trust = "cluster")`},
		{"allow this node", valid + peers + "[[sap]]\nservice = \"echo\"\nallow = [\"alpha\"]\n", "sap[1].allow[1]", `: sap[1].allow[1]: "alpha" is this node, not a peer`},
		{"allow twice", valid + peers + "[[sap]]\nservice = \"echo\"\nallow = [\"gamma\", \"beta\", \"gamma\"]\n", "sap[1].allow[3]", `: sap[1].allow[3]: "gamma" is listed twice`},
		{"allow twice, trust cluster", with("trust", `"cluster"`) + "[[sap]]\nservice = \"echo\"\nallow = [\"x\", \"x\"]\n", "sap[1].allow[2]", `: sap[1].allow[2]: "x" is listed twice`},
		{"allow invalid name, trust cluster", with("trust", `"cluster"`) + "[[sap]]\nservice = \"echo\"\nallow = [\"X\"]\n", "sap[1].allow[1]", `: sap[1].allow[1]: node name "X": character 'X' is not a lower-case letter, digit, '-' or '.'`},
		{"allow this node, trust cluster", with("trust", `"cluster"`) + "[[sap]]\nservice = \"echo\"\nallow = [\"alpha\"]\n", "sap[1].allow[1]", `: sap[1].allow[1]: "alpha" is this node, not a peer`},

		// trust.
		{"trust unknown", with("trust", `"all"`), "trust", `: trust: "all": want "peers" (only the [[peer]]s call and are called) or "cluster" (any node with a certificate of the cluster CA)`},
		{"trust empty", with("trust", `""`), "trust", `: trust: "": want "peers" (only the [[peer]]s call and are called) or "cluster" (any node with a certificate of the cluster CA)`},
		{"trust upper case", with("trust", `"Peers"`), "trust", `: trust: "Peers": want "peers" (only the [[peer]]s call and are called) or "cluster" (any node with a certificate of the cluster CA)`},
		{"trust is boolean", with("trust", `true`), "trust", `:7: trust: is a boolean, want a string`},
		{"topology unknown", with("topology", `"standalone"`), "topology", `: topology: "standalone": want "integrated" (a miniport call manager) or "split" (a stand-alone call manager over a CoNDIS miniport)`},

		// address_prefix.
		{"prefix AFI 49", with("address_prefix", `"49.9999.c0d1.0000.0000.0000.0000"`), "address_prefix", `: address_prefix: AFI 49 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)`},
		{"prefix too short", with("address_prefix", `"479999c0d1"`), "address_prefix", `: address_prefix: "479999c0d1" has 10 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"prefix a whole address", with("address_prefix", `"479999c0d10000000000000000.8ed3f6ad685b.00"`), "address_prefix", `: address_prefix: "479999c0d10000000000000000.8ed3f6ad685b.00" has 40 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"prefix empty", with("address_prefix", `""`), "address_prefix", `: address_prefix: "" has 0 hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)`},
		{"prefix not hex", with("address_prefix", `"47:9999:c0d1:0000:0000:0000:0000"`), "address_prefix", `: address_prefix: "47:9999:c0d1:0000:0000:0000:0000": ':' is not a hex digit (want 26 hex digits, AFI first)`},
		{"prefix bad ICD", with("address_prefix", `"47.99a9.c0d1.0000.0000.0000.0000"`), "address_prefix", `: address_prefix: ICD 99a9 is not 4 decimal digits`},
		{"prefix bad DCC", with("address_prefix", `"39.8400.80ffe1.0000.0000.0000.00"`), "address_prefix", `: address_prefix: DCC 8400 is not 3 decimal digits and a final f (e.g. 840f)`},
		{"prefix is integer", with("address_prefix", `47`), "address_prefix", `:7: address_prefix: is an integer, want a string`},
		{"peer prefix AFI", valid + peers + "address_prefix = \"00.9999.c0d1.0000.0000.0000.0000\"\n", "peer[2].address_prefix", `: peer[2].address_prefix: AFI 00 is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)`},
		{"peer prefix bad E.164", valid + peers + "address_prefix = \"45.0000000000000012.00000000\"\n", "peer[2].address_prefix", `: peer[2].address_prefix: E.164 IDI 0000000000000012 is not 15 decimal digits (leading zeros pad the number) and a final f`},
		{"unknown key in peer, near address_prefix", valid + peers + "adress_prefix = \"x\"\n", "peer[2]", `: peer[2]: unknown key "adress_prefix" (did you mean "address_prefix"?)`},

		// ESI collisions (pairs found by search: the first 46 bits of
		// their SHA-256 agree).
		{"peers share an ESI", valid + "[[peer]]\nname = \"n795505\"\naddress = \"a:1\"\n[[peer]]\nname = \"n2441896\"\naddress = \"b:1\"\n", "peer[2].name",
			`: peer[2].name: "n2441896" has the ESI of peer[1] ("n795505") (c6053aa2c7ef): one of the two nodes needs another name`},
		{"peer shares this node's ESI", with("name", `"n12280958"`) + "[[peer]]\nname = \"n753089\"\naddress = \"a:1\"\n", "peer[1].name",
			`: peer[1].name: "n753089" has the ESI of this node ("n12280958") (a28e78f06438): one of the two nodes needs another name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.text)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if got, want := err.Error(), path+tc.want; got != want {
				t.Errorf("error\n got %s\nwant %s", got, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T, want *Error", err)
			}
			if ce.File != path || ce.Key != tc.key {
				t.Errorf("File %q, Key %q; want %q, %q", ce.File, ce.Key, path, tc.key)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, err := Load(path)
	var ce *Error
	if !errors.As(err, &ce) || err.Error() != path+": no such file or directory" {
		t.Errorf("Load of a missing file: %v", err)
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), dir+": ") {
		t.Errorf("Load of a directory: %v", err)
	}
}

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster")
	if _, err := pki.InitCA(cluster); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alpha", "beta"} {
		if _, err := pki.Issue(cluster, n); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(certName string) string {
		return `name = "alpha"
listen = "127.0.0.1:0"
control = "alpha.sock"
ca = "cluster/ca.pem"
cert = "cluster/` + certName + `.pem"
key = "cluster/` + certName + `.key"
`
	}
	load := func(text string) *Config {
		path := filepath.Join(dir, "node.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := load(conf("alpha"))
	id, err := c.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "alpha" {
		t.Errorf("identity of %q", id.Name)
	}

	c = load(conf("beta"))
	_, err = c.Identity()
	if want := c.File + `: cert: ` + c.Cert + ` is the certificate of node "beta", not of "alpha" (name)`; err == nil || err.Error() != want {
		t.Errorf("someone else's certificate:\n got %v\nwant %s", err, want)
	}

	c = load(conf("gamma"))
	_, err = c.Identity()
	if want := c.File + `: cert: open ` + c.Cert + `: no such file or directory`; err == nil || err.Error() != want {
		t.Errorf("missing certificate:\n got %v\nwant %s", err, want)
	}

	c = load(strings.Replace(conf("alpha"), "alpha.key", "beta.key", 1))
	_, err = c.Identity()
	if want := c.File + `: key: ` + c.Key + ` does not hold the key of ` + c.Cert; err == nil || err.Error() != want {
		t.Errorf("someone else's key:\n got %v\nwant %s", err, want)
	}

	c = load(strings.Replace(conf("alpha"), "cluster/ca.pem", "ca.pem", 1))
	_, err = c.Identity()
	var ce *Error
	if want := c.File + `: ca: open ` + c.CA + `: no such file or directory`; err == nil || err.Error() != want || !errors.As(err, &ce) || ce.Key != "ca" {
		t.Errorf("missing CA:\n got %v\nwant %s", err, want)
	}

	other := filepath.Join(dir, "other")
	if _, err := pki.InitCA(other); err != nil {
		t.Fatal(err)
	}
	c = load(strings.Replace(conf("alpha"), "cluster/ca.pem", "other/ca.pem", 1))
	_, err = c.Identity()
	if want := c.File + `: cert: ` + c.Cert + ` does not verify against ` + c.CA + `: `; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("another CA:\n got %v\nwant %s...", err, want)
	}
}
