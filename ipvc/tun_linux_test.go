package ipvc

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tunChildEnv, set in the environment of this test binary, makes
// TestOpenWithoutCapNetAdmin the child: it opens the TUN and prints the
// error.
const tunChildEnv = "CONDIS_TUN_CHILD"

// TestOpenWithoutCapNetAdmin: a process without CAP_NET_ADMIN that opens
// the TUN interface gets the documented one-line error, naming the
// interface and what to do. The test runs as root and re-runs its own
// binary as nobody (uid and gid 65534), which has no capabilities.
func TestOpenWithoutCapNetAdmin(t *testing.T) {
	cfg := Config{Device: "condistest9", Address: netip.MustParsePrefix("198.18.250.1/24"),
		Routes: []Route{{Node: "beta", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.250.2/32")}}}}
	if os.Getenv(tunChildEnv) == "1" {
		dev, err := Open(cfg)
		if err == nil {
			dev.Close()
			fmt.Println("opened")
			return
		}
		fmt.Println(err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("\n\n*** SKIPPED: TestOpenWithoutCapNetAdmin needs root, to run its child as nobody (no CAP_NET_ADMIN). CI runs it as root. ***\n\n")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("\n\n*** SKIPPED: TestOpenWithoutCapNetAdmin needs /dev/net/tun (%v). ***\n\n", err)
	}
	// The test binary sits in a directory only root may enter: nobody
	// runs a copy of it from one it may.
	dir, err := os.MkdirTemp("", "ipvc-nocap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ipvc.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestOpenWithoutCapNetAdmin$", "-test.count", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), tunChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child (uid 65534): %v\n%s", err, out)
	}
	const want = "ip: creating the TUN interface condistest9 needs CAP_NET_ADMIN: run the node as root, or setcap cap_net_admin+ep on its binary"
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[0] != want {
		t.Fatalf("the child without CAP_NET_ADMIN said\n%s\nwant first the line\n%s", out, want)
	}
}
