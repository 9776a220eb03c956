package ipvc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// The namespace test: two `condis node` processes, alpha and beta, each in
// a network namespace of its own (made by the test, removed when it ends),
// joined by a veth pair that carries their QUIC; each has its condis0.
// Addresses are from 198.18.0.0/15 only: the veth 198.19.0.1-2/30, the
// condis0 interfaces 198.18.0.1 and .2/24.

// netnsEnv holds what the namespace tests share.
type netnsEnv struct {
	t        *testing.T
	dir, bin string
	nsA, nsB string
	procs    map[string]*nodeProc
}

type nodeProc struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
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

// requireNetnsEnv is the environment variable that makes the namespace
// test fail instead of skip when it cannot run: CI sets
// CONDIS_REQUIRE_NETNS=1 (.ci/run), so a green CI proves it ran.
const requireNetnsEnv = "CONDIS_REQUIRE_NETNS"

// needNetns skips, loudly, unless the test can make namespaces and TUN
// interfaces: root, /dev/net/tun, the ip command (and tools). With
// CONDIS_REQUIRE_NETNS=1 it fails instead (skipNetns).
func needNetns(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		skipNetns(t, "it builds condis and runs nodes in network namespaces, which -short leaves out")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and TUN interfaces)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		skipNetns(t, "it needs "+strings.Join(missing, ", ")+". CI runs it as root")
	}
}

// skipNetns skips the namespace test, loudly, because of why, or fails it
// when CONDIS_REQUIRE_NETNS=1 says it must run.
func skipNetns(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(requireNetnsEnv) == "1" {
		t.Fatalf("%s=1, but the IP over condis namespace test cannot run: %s", requireNetnsEnv, why)
	}
	t.Skipf("\n\n*** SKIPPED: the IP over condis namespace test: %s (%s=1 makes this a failure). ***\n\n", why, requireNetnsEnv)
}

func (e *netnsEnv) run(name string, args ...string) string {
	e.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetnsEnv builds condis, makes the namespaces, the veth pair and the
// certificates, and writes the node configurations (betaRoutes: whether
// beta has its route to alpha).
func newNetnsEnv(t *testing.T) *netnsEnv {
	dir := t.TempDir()
	e := &netnsEnv{t: t, dir: dir, bin: filepath.Join(dir, "condis"), procs: map[string]*nodeProc{}}
	suffix := fmt.Sprintf("%d", os.Getpid())
	e.nsA, e.nsB = "condis-a-"+suffix, "condis-b-"+suffix
	if out, err := exec.Command("go", "build", "-o", e.bin, "../cmd/condis").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e.run("ip", "netns", "add", e.nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.nsA).Run() })
	e.run("ip", "netns", "add", e.nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.nsB).Run() })
	e.run("ip", "link", "add", "cveth-a", "netns", e.nsA, "type", "veth", "peer", "name", "cveth-b", "netns", e.nsB)
	e.run("ip", "-n", e.nsA, "addr", "add", "198.19.0.1/30", "dev", "cveth-a")
	e.run("ip", "-n", e.nsB, "addr", "add", "198.19.0.2/30", "dev", "cveth-b")
	for _, ns := range []string{e.nsA, e.nsB} {
		e.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	e.run("ip", "-n", e.nsA, "link", "set", "cveth-a", "up")
	e.run("ip", "-n", e.nsB, "link", "set", "cveth-b", "up")
	pki := filepath.Join(dir, "pki")
	e.run(e.bin, "cert", "init", "--dir", pki)
	e.run(e.bin, "cert", "issue", "--dir", pki, "alpha")
	e.run(e.bin, "cert", "issue", "--dir", pki, "beta")
	e.writeConfig("alpha", "198.19.0.1", "beta", "198.19.0.2", "198.18.0.1/24",
		`[[ip.route]]
prefixes = ["198.18.0.2/32"]
node = "beta"
`)
	e.writeConfig("beta", "198.19.0.2", "alpha", "198.19.0.1", "198.18.0.2/24",
		`[[ip.route]]
prefixes = ["198.18.0.1/32"]
node = "alpha"
`)
	// beta-refuses: the same beta without a route to alpha, so it refuses
	// alpha's IP calls.
	e.writeConfig("beta-refuses", "198.19.0.2", "alpha", "198.19.0.1", "198.18.0.2/24", "")
	return e
}

// writeConfig writes name.toml; idle_timeout is 3 s so the test sees VCs go.
func (e *netnsEnv) writeConfig(file, addr, peer, peerAddr, ipAddr, routes string) {
	name, _, _ := strings.Cut(file, "-")
	conf := fmt.Sprintf(`name = %q
listen = "%s:4800"
control = %q
ca = "pki/ca.pem"
cert = "pki/%s.pem"
key = "pki/%s.key"

[[peer]]
name = %q
address = "%s:4800"

[ip]
address = %q
idle_timeout = "3s"

%s`, name, addr, filepath.Join(e.dir, name+".sock"), name, name, peer, peerAddr, ipAddr, routes)
	if err := os.WriteFile(filepath.Join(e.dir, file+".toml"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *netnsEnv) ns(name string) string {
	if name == "alpha" {
		return e.nsA
	}
	return e.nsB
}

// start runs the node configured in file.toml in its namespace and waits
// for its control socket and its condis0.
func (e *netnsEnv) start(file string) {
	t := e.t
	t.Helper()
	name, _, _ := strings.Cut(file, "-")
	sock := filepath.Join(e.dir, name+".sock")
	os.Remove(sock)
	logs := &lockedBuffer{}
	cmd := exec.Command("ip", "netns", "exec", e.ns(name), e.bin, "node", "--config", filepath.Join(e.dir, file+".toml"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	e.procs[name] = p
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			if out, err := exec.Command("ip", "-n", e.ns(name), "link", "show", "condis0").CombinedOutput(); err == nil && strings.Contains(string(out), "UP") {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("node %s exited:\n%s", name, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not come up:\n%s", name, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // another process is starting
	}
}

// stop ends a node: SIGTERM (it releases its calls) or SIGKILL.
func (e *netnsEnv) stop(name string, sig syscall.Signal) {
	p := e.procs[name]
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		e.t.Fatalf("node %s did not exit on %v:\n%s", name, sig, p.logs.String())
	}
}

// ping pings to from name's namespace: count pings, one every 0.2 s.
func (e *netnsEnv) ping(name, to string, count int) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", e.ns(name), "ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "3", to).CombinedOutput()
	return string(out), err
}

// ipCalls lists the node's VCs to or from service ip, as `condis calls`
// does (the control socket's calls request).
func (e *netnsEnv) ipCalls(name string) []node.CallInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls, err := node.ListCalls(ctx, filepath.Join(e.dir, name+".sock"))
	if err != nil {
		e.t.Fatalf("calls of %s: %v", name, err)
	}
	var ip []node.CallInfo
	for _, c := range calls {
		if c.Service == "ip" {
			ip = append(ip, c)
		}
	}
	return ip
}

// traceCalls follows name's call events (`condis trace`), typed.
func (e *netnsEnv) traceCalls(name string) <-chan node.TraceEvent {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := node.DialTrace(ctx, filepath.Join(e.dir, name+".sock"))
	if err != nil {
		e.t.Fatal(err)
	}
	ch := make(chan node.TraceEvent, 1024)
	go func() {
		defer close(ch)
		for {
			ev, err := s.Next(nil)
			if err != nil {
				return
			}
			if ev.Kind == node.TraceCall {
				ch <- ev
			}
		}
	}()
	e.t.Cleanup(func() { s.Close() })
	return ch
}

// waitEvent waits up to d for a call event of service ip that match
// accepts.
func waitEvent(t *testing.T, ch <-chan node.TraceEvent, d time.Duration, what string, match func(node.TraceEvent) bool) node.TraceEvent {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the trace ended", what)
			}
			if ev.Service == "ip" && match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: not seen within %v", what, d)
		}
	}
}

// TestIPOverCondisInNamespaces is issue 11 item 4 end to end: refusal as
// ICMP, ping both ways, 100 MB over TCP with its checksum, a VC on demand
// that goes after the idle timeout, and a VC closed with
// DEST_OUT_OF_ORDER when its node dies, replaced once the node is back.
func TestIPOverCondisInNamespaces(t *testing.T) {
	needNetns(t, "ping")
	e := newNetnsEnv(t)
	e.start("alpha")
	alphaTrace := e.traceCalls("alpha")

	// 1. A route to a node that refuses: beta has no route to alpha. Its
	// call is refused with cause 21; ping gets ICMP "administratively
	// prohibited" ("Packet filtered").
	e.start("beta-refuses")
	out, err := e.ping("alpha", "198.18.0.2", 1)
	if err == nil || !strings.Contains(out, "From 198.18.0.2 icmp_seq=1 Packet filtered") {
		t.Fatalf("ping to a node that refuses: %v\n%s\nalpha:\n%s\nbeta:\n%s", err, out, e.procs["alpha"].logs, e.procs["beta"].logs)
	}
	ev := waitEvent(t, alphaTrace, 5*time.Second, "alpha's refused call", func(ev node.TraceEvent) bool { return ev.Event == trace.CallFailed.String() })
	if ev.Cause != int(uni.CauseCallRejected) {
		t.Fatalf("refused call %+v, want cause 21", ev)
	}
	e.stop("beta", syscall.SIGTERM)

	// 2. Ping both ways; the VC appears on demand and `condis calls` shows
	// it on both nodes.
	e.start("beta")
	if calls := e.ipCalls("alpha"); len(calls) != 0 {
		t.Fatalf("alpha has IP VCs before any packet: %+v", calls)
	}
	time.Sleep(RefusedHoldForTest) // the refusal's hold-down passes
	if out, err := e.ping("alpha", "198.18.0.2", 3); err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping alpha -> beta: %v\n%s", err, out)
	}
	if out, err := e.ping("beta", "198.18.0.1", 3); err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping beta -> alpha: %v\n%s", err, out)
	}
	ev = waitEvent(t, alphaTrace, 5*time.Second, "alpha's IP call", func(ev node.TraceEvent) bool { return ev.Event == trace.CallConnected.String() })
	vc := ev.Vc
	if calls := e.ipCalls("alpha"); len(calls) != 1 || calls[0].Peer != "beta" {
		t.Fatalf("alpha's IP VCs %+v, want one to beta", calls)
	}
	if calls := e.ipCalls("beta"); len(calls) != 1 || calls[0].Peer != "alpha" {
		t.Fatalf("beta's IP VCs %+v, want one from alpha (beta's pings used it)", calls)
	}

	// condis status reports the interface, its peer and its counters.
	st, err := node.QueryStatus(context.Background(), filepath.Join(e.dir, "alpha.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if ip := st.IP; ip == nil || ip.Device != "condis0" || ip.Address != "198.18.0.1/24" || len(ip.Peers) != 1 || ip.Peers[0].Node != "beta" ||
		ip.Peers[0].Phase != "up" || len(ip.Peers[0].VCs) != 1 || ip.Stats.TxPackets < 3 || ip.Stats.RxPackets < 3 || ip.Stats.Connected < 1 {
		t.Fatalf("alpha's status says of IP: %+v", st.IP)
	}

	// 3. 100 MB over TCP, checksum verified at the far end.
	const size = 100 << 20
	sum := tcpTransfer(t, e, size)
	t.Logf("100 MB over condis0: sha256 %x both ends", sum)

	// 4. The VC goes after the idle timeout (3 s) without packets. Both
	// ends run the same idle timer, so either may release it first: alpha
	// sees its own release or beta's.
	waitEvent(t, alphaTrace, 10*time.Second, "the idle VC's release", func(ev node.TraceEvent) bool {
		return ev.Event == trace.CallReleased.String() && ev.Vc == vc
	})
	if calls := e.ipCalls("alpha"); len(calls) != 0 {
		t.Fatalf("alpha's IP VCs after the idle timeout: %+v", calls)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) { // beta may still be taking alpha's RELEASE
		calls := e.ipCalls("beta")
		if len(calls) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta's IP VCs after the idle timeout: %+v", calls)
		}
	}

	// 5. beta dies: alpha's VC closes with DEST_OUT_OF_ORDER; once beta is
	// back, the next packet sets up a new call.
	if out, err := e.ping("alpha", "198.18.0.2", 1); err != nil {
		t.Fatalf("ping before the kill: %v\n%s", err, out)
	}
	vc = waitEvent(t, alphaTrace, 5*time.Second, "alpha's new IP call", func(ev node.TraceEvent) bool { return ev.Event == trace.CallConnected.String() }).Vc
	// Packets keep flowing (into the void), so the VC is not idle when
	// the network closes it.
	pinger := exec.Command("ip", "netns", "exec", e.nsA, "ping", "-n", "-q", "-i", "0.2", "198.18.0.2")
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	e.stop("beta", syscall.SIGKILL)
	ev = waitEvent(t, alphaTrace, 30*time.Second, "the dead node's VC closing", func(ev node.TraceEvent) bool {
		return ev.Event == trace.CallReleased.String() && ev.Vc == vc
	})
	pinger.Process.Kill()
	pinger.Wait()
	if ev.Status != ndis.StatusDestOutOfOrder.String() || ev.Cause != int(uni.CauseDestinationOutOfOrder) {
		t.Fatalf("VC to the dead node closed with %s, cause %d; want NDIS_STATUS_DEST_OUT_OF_ORDER, cause 27", ev.Status, ev.Cause)
	}
	e.start("beta")
	time.Sleep(RefusedHoldForTest)
	if out, err := e.ping("alpha", "198.18.0.2", 2); err != nil || !strings.Contains(out, "2 received") {
		t.Fatalf("ping once beta is back: %v\n%s", err, out)
	}
	waitEvent(t, alphaTrace, 5*time.Second, "the call to the restarted node", func(ev node.TraceEvent) bool { return ev.Event == trace.CallConnected.String() })
}

// RefusedHoldForTest is ipvc.RefusedHold and a little.
const RefusedHoldForTest = 1100 * time.Millisecond

// tcpTransfer sends size pseudo-random octets from alpha to beta over TCP
// on condis0 and returns their SHA-256, which it checks beta computed too.
func tcpTransfer(t *testing.T, e *netnsEnv, size int) []byte {
	t.Helper()
	// The receiver: a helper process in beta's namespace (this test
	// binary, run as a TCP sink that prints the SHA-256 of what it got).
	recv := exec.Command("ip", "netns", "exec", e.nsB, os.Args[0], "-test.run=^TestHelperSink$")
	recv.Env = append(os.Environ(), "CONDIS_SINK=198.18.0.2:5001")
	stdout, _ := recv.StdoutPipe()
	recv.Stderr = os.Stderr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Process.Kill()
	br := bufio.NewReader(stdout)
	if line, err := br.ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("sink: %q %v", line, err)
	}
	send := exec.Command("ip", "netns", "exec", e.nsA, os.Args[0], "-test.run=^TestHelperSink$")
	send.Env = append(os.Environ(), "CONDIS_SOURCE=198.18.0.2:5001", fmt.Sprintf("CONDIS_SIZE=%d", size))
	start := time.Now()
	out, err := send.Output()
	if err != nil {
		t.Fatalf("source: %v", err)
	}
	took := time.Since(start)
	got, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	recv.Wait()
	sent := strings.TrimSpace(string(out))
	if strings.TrimSpace(got) != sent || len(sent) != 64 {
		t.Fatalf("sent sha256 %s, received %s", sent, got)
	}
	t.Logf("100 MB in %v: %.0f Mbit/s", took.Round(time.Millisecond), float64(size)*8/took.Seconds()/1e6)
	sum, err := hex.DecodeString(sent)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestHelperSink is not a test: run by tcpTransfer in a namespace, it is
// the TCP sink (CONDIS_SINK: prints "listening", then the SHA-256 of what
// one connection sent) or source (CONDIS_SOURCE: sends CONDIS_SIZE octets
// of a fixed pseudo-random stream and prints their SHA-256).
func TestHelperSink(t *testing.T) {
	if addr := os.Getenv("CONDIS_SINK"); addr != "" {
		runSink(addr)
		os.Exit(0)
	}
	if addr := os.Getenv("CONDIS_SOURCE"); addr != "" {
		var size int
		fmt.Sscan(os.Getenv("CONDIS_SIZE"), &size)
		runSource(addr, size)
		os.Exit(0)
	}
	t.Skip("a helper process for TestIPOverCondisInNamespaces")
}

func runSink(addr string) {
	ln, err := listenTCP(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	c, err := ln.Accept()
	if err != nil {
		os.Exit(1)
	}
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil && !errors.Is(err, io.EOF) {
		os.Exit(1)
	}
	fmt.Printf("%x\n", h.Sum(nil))
}

func runSource(addr string, size int) {
	c, err := dialTCP(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for left := size; left > 0; {
		n := min(left, len(buf))
		for i := 0; i < n; i += 8 { // xorshift: not compressible, not constant
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := 0; k < 8 && i+k < n; k++ {
				buf[i+k] = byte(x >> (8 * k))
			}
		}
		h.Write(buf[:n])
		if _, err := c.Write(buf[:n]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		left -= n
	}
	c.Close()
	fmt.Printf("%x\n", h.Sum(nil))
}

func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }
