package node

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/condis-project/condis/q2931"
)

// TestConfigKeysDocumentEveryKey: every key Load knows is in ConfigKeys;
// the examples of ConfigKeys, put together, make a file Load accepts; the
// defaults it states are what Load makes of a file without them. (An entry
// for a key Load does not know must point to the section that documents
// it.)
func TestConfigKeysDocumentEveryKey(t *testing.T) {
	documented := map[string]ConfigKey{}
	for _, k := range ConfigKeys {
		if _, dup := documented[k.Key]; dup {
			t.Errorf("%q documented twice", k.Key)
		}
		documented[k.Key] = k
	}
	var known []string
	for _, k := range topKeys {
		if k != "peer" && k != "sap" && k != "ip" {
			known = append(known, k)
		}
	}
	for _, k := range peerKeys {
		known = append(known, "[[peer]] "+k)
	}
	for _, k := range sapKeys {
		known = append(known, "[[sap]] "+k)
	}
	for _, k := range ipKeys {
		if k != "route" {
			known = append(known, "[ip] "+k)
		}
	}
	for _, k := range ipRouteKeys {
		known = append(known, "[[ip.route]] "+k)
	}
	for _, k := range known {
		if _, ok := documented[k]; !ok {
			t.Errorf("key %q is not in ConfigKeys", k)
		}
	}

	dir := t.TempDir()
	var top, peer, sap, ip, route strings.Builder
	for _, k := range ConfigKeys {
		if !slices.Contains(known, k.Key) {
			if k.See == "" || k.Doc != "" {
				t.Errorf("ConfigKeys documents %q, which Load does not know", k.Key)
			}
			continue
		}
		if k.Default == "" || k.Example == "" || k.Doc == "" {
			t.Errorf("%q: %+v, want a default, an example and a text", k.Key, k)
		}
		name, _, _ := strings.Cut(k.Example, " =")
		if want := k.Key[strings.LastIndex(k.Key, " ")+1:]; name != want {
			t.Errorf("%q: example %q sets %q", k.Key, k.Example, name)
		}
		switch {
		case strings.HasPrefix(k.Key, "[[peer]]"):
			peer.WriteString(k.Example + "\n")
		case strings.HasPrefix(k.Key, "[[sap]]"):
			sap.WriteString(k.Example + "\n")
		case strings.HasPrefix(k.Key, "[ip]"):
			ip.WriteString(k.Example + "\n")
		case strings.HasPrefix(k.Key, "[[ip.route]]"):
			route.WriteString(k.Example + "\n")
		default:
			top.WriteString(k.Example + "\n")
		}
	}
	file := filepath.Join(dir, "alpha.toml")
	text := top.String() + "\n[[peer]]\n" + peer.String() + "\n[[sap]]\n" + sap.String() +
		"\n[ip]\n" + ip.String() + "\n[[ip.route]]\n" + route.String()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatalf("the examples of ConfigKeys:\n%s\ndo not load: %v", text, err)
	}
	if cfg.Trust != TrustCluster || len(cfg.Peers) != 1 || len(cfg.SAPs) != 1 || len(cfg.SAPs[0].Allow) != 1 ||
		cfg.IP == nil || len(cfg.IP.Routes) != 1 || cfg.IP.Routes[0].Flowspec.TokenRate != 12500000 {
		t.Errorf("the examples loaded as %+v", cfg)
	}

	// The defaults stated are Load's.
	minimal := `name = "alpha"` + "\n" + `listen = ":0"` + "\n" + `control = "a.sock"` + "\n" +
		`ca = "ca.pem"` + "\n" + `cert = "a.pem"` + "\n" + `key = "a.key"` + "\n"
	if err := os.WriteFile(file, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if d := documented["trust"].Default; d != strconv.Quote(string(cfg.Trust)) {
		t.Errorf("trust: documented default %s, Load's %q", d, cfg.Trust)
	}
	d, _ := strconv.Unquote(documented["address_prefix"].Default)
	if p, err := q2931.ParsePrefix(d); err != nil || p != cfg.AddressPrefix || p != q2931.DefaultPrefix {
		t.Errorf("address_prefix: documented default %s (%v), Load's %v", d, err, cfg.AddressPrefix)
	}
}

// TestREADMEHasTheConfigReference: the README's configuration reference
// is ConfigReferenceMarkdown, word for word.
func TestREADMEHasTheConfigReference(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := ConfigReferenceMarkdown(); !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not hold the configuration reference; paste this table in its place:\n%s", want)
	}
}
