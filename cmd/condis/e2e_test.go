package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMultiProcessEndToEnd builds the binary and runs two `condis node`
// processes on loopback (issue 4 item 8): `condis listen --echo` on beta,
// data piped through `condis call` from alpha comes back byte-exact, then
// beta is killed with SIGKILL mid-call and alpha's `condis call` must exit
// non-zero with the Q.2931 cause on stderr, after T309 plus link-loss
// detection. It also checks that alpha shuts down cleanly on SIGTERM.
func TestMultiProcessEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes; skipped with -short")
	}
	c := startCluster(t)
	dir, bin, alpha, alphaLog, beta := c.dir, c.bin, c.alpha, c.alphaLog, c.beta

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	listen := exec.CommandContext(ctx, bin, "listen", "--control", filepath.Join(dir, "beta.sock"), "echo", "--echo")
	var listenOut bytes.Buffer
	listen.Stdout, listen.Stderr = &listenOut, &listenOut
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listen.Process.Kill(); listen.Wait() })

	// Data both ways: what goes in comes back.
	payload := "hello over QUIC\nsecond line\n"
	var echoed []byte
	var err error
	for i := 0; i < 50; i++ { // the listener registers its SAP asynchronously
		call := exec.CommandContext(ctx, bin, "call", "--control", filepath.Join(dir, "alpha.sock"), "beta/echo")
		call.Stdin = strings.NewReader(payload)
		var stderr bytes.Buffer
		call.Stderr = &stderr
		if echoed, err = call.Output(); err == nil || !strings.Contains(stderr.String(), "cause 88") {
			if err != nil {
				t.Fatalf("condis call: %v: %s", err, stderr.String())
			}
			break
		}
		time.Sleep(100 * time.Millisecond) // waiting for another process, not asserting time
	}
	if string(echoed) != payload {
		t.Fatalf("echoed %q, want %q", echoed, payload)
	}

	// bench counts the contract violations of both nodes: none.
	bench := exec.CommandContext(ctx, bin, "bench", "--control", filepath.Join(dir, "alpha.sock"),
		"--far-control", filepath.Join(dir, "beta.sock"), "--calls", "200", "--concurrency", "4", "--baseline=false", "beta/echo")
	if out, err := bench.CombinedOutput(); err != nil || !strings.Contains(string(out), "contract violations during the run: alpha: none; beta: none\n") {
		t.Fatalf("condis bench: %v\n%s", err, out)
	}

	// A call that stays up; beta dies without a word.
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	call := exec.CommandContext(ctx, bin, "call", "--control", filepath.Join(dir, "alpha.sock"), "beta/echo")
	call.Stdin = pr
	var stdout, stderr lockedBuffer // written by exec's copiers while the test polls
	call.Stdout, call.Stderr = &stdout, &stderr
	if err := call.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	fmt.Fprintln(pw, "before the crash")
	for i := 0; i < 100 && !strings.Contains(stdout.String(), "before the crash"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	beta.Process.Signal(syscall.SIGKILL)
	err = call.Wait()
	took := time.Since(killed)
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() == 0 {
		t.Fatalf("condis call after the far node died: err %v, stderr %q", err, stderr.String())
	}
	want := "call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)"
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q, want it to say %q", stderr.String(), want)
	}
	t.Logf("the far node's death reached the caller %v after SIGKILL (T309 10 s + link-loss detection)", took.Round(time.Millisecond))

	// SIGTERM: alpha releases its calls and exits 0.
	alpha.Process.Signal(syscall.SIGTERM)
	if err := alpha.Wait(); err != nil {
		t.Fatalf("alpha after SIGTERM: %v\n%s", err, alphaLog.String())
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cluster is two `condis node` processes, alpha and beta, on loopback with
// real certificates, built from this checkout.
type cluster struct {
	dir, bin    string
	alpha, beta *exec.Cmd
	alphaLog    *bytes.Buffer
}

func startCluster(t testing.TB) *cluster { return startClusterWith(t, nil) }

// startClusterWith is startCluster with extra top-level configuration
// lines for the nodes (extra[name]).
func startClusterWith(t testing.TB, extra map[string]string) *cluster {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "condis")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("condis %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pkiDir := filepath.Join(dir, "pki")
	run("cert", "init", "--dir", pkiDir)
	run("cert", "issue", "--dir", pkiDir, "alpha")
	run("cert", "issue", "--dir", pkiDir, "beta")
	ports := freeUDPPorts(t, 2)
	nodes := map[string]int{"alpha": ports[0], "beta": ports[1]}
	for name, port := range nodes {
		peer := "beta"
		if name == "beta" {
			peer = "alpha"
		}
		conf := fmt.Sprintf(`name = %q
listen = "127.0.0.1:%d"
control = %q
ca = "pki/ca.pem"
cert = "pki/%s.pem"
key = "pki/%s.key"
%s
[[peer]]
name = %q
address = "127.0.0.1:%d"
`, name, port, filepath.Join(dir, name+".sock"), name, name, extra[name], peer, nodes[peer])
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := func(name string) (*exec.Cmd, *bytes.Buffer) {
		var logs bytes.Buffer
		cmd := exec.Command(bin, "node", "--config", filepath.Join(dir, name+".toml"), "-v")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &logs
	}
	alpha, alphaLog := start("alpha")
	beta, _ := start("beta")
	waitFor(t, filepath.Join(dir, "alpha.sock"))
	waitFor(t, filepath.Join(dir, "beta.sock"))
	return &cluster{dir: dir, bin: bin, alpha: alpha, beta: beta, alphaLog: alphaLog}

}

func freeUDPPorts(t testing.TB, n int) []int {
	var ports []int
	var conns []net.PacketConn
	for i := 0; i < n; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

func waitFor(t testing.TB, path string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond) // another process is starting
	}
	t.Fatalf("%s never appeared", path)
}
