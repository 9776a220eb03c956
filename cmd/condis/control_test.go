package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
)

// TestMain fails the package's tests if any goroutine outlives them. With
// CONDIS_TEST_MAIN=1 the test binary is the condis command instead, so
// tests can check exit statuses and stderr exactly as a shell sees them.
func TestMain(m *testing.M) {
	if os.Getenv("CONDIS_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// testNode is a node's control plane in process over the in-memory MCM,
// with a strict mediator. At cleanup it is shut down and the mediator must
// hold nothing.
type testNode struct {
	m    *ndis.Mediator
	fab  *memdrv.Fabric
	mcm  *memdrv.MCM
	mem  *memdrv.CallManager
	sock string
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	n := &testNode{fab: memdrv.NewFabric()}
	n.m = ndis.New(ndis.Options{Name: t.Name(), OnViolation: ndis.FailOn(t)})
	var st ndis.Status
	if n.mcm, st = memdrv.NewMCM(n.m, "mcm", n.fab); st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	n.mcm.SetMode(memdrv.Pend)
	n.mem = memdrv.NewCallManager(n.mcm, n.fab)
	ctl, err := node.NewControl(context.Background(), n.mem, node.Options{})
	if err != nil {
		n.mem.Close()
		t.Fatal(err)
	}
	n.sock = filepath.Join(t.TempDir(), "c.sock")
	ln, err := node.ListenControl(n.sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	t.Cleanup(func() {
		if err := ctl.Close(); err != nil {
			t.Errorf("Control.Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		n.mem.Close()
		if s := n.m.Snapshot(); !s.Empty() {
			t.Errorf("the mediator still holds objects:\n%v", s)
		}
		n.m.Audit()
	})
	return n
}

// command is a condis command line running in process.
type command struct {
	done   chan error
	cancel context.CancelFunc
	stderr *bytes.Buffer // read only after done

	once sync.Once
	err  error
}

// start runs condis args in process with the given stdin and stdout.
func start(stdin io.Reader, stdout, stderr io.Writer, args ...string) *command {
	ctx, cancel := context.WithCancel(context.Background())
	c := &command{done: make(chan error, 1), cancel: cancel}
	if stderr == nil {
		c.stderr = new(bytes.Buffer)
		stderr = c.stderr
	}
	r := root()
	r.SetArgs(args)
	r.SetIn(stdin)
	r.SetOut(stdout)
	r.SetErr(stderr)
	go func() { c.done <- r.ExecuteContext(ctx) }()
	return c
}

// wait waits for the command to end and returns its error (what main
// would print after "condis: "). It may be called more than once.
func (c *command) wait() error {
	c.once.Do(func() {
		c.err = <-c.done
		c.cancel()
	})
	return c.err
}

// listenEcho runs `condis listen --echo -v SERVICE` until the test ends,
// and returns once it is listening.
func (n *testNode) listenEcho(t *testing.T, service string) *command {
	t.Helper()
	pr, pw := io.Pipe()
	c := start(nil, io.Discard, pw, "listen", "--control", n.sock, "--echo", "-v", service)
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "listening on "+service+" (echo)\n" {
		t.Fatalf("listen said %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr) // the rest of -v
	t.Cleanup(func() {
		c.cancel()
		if err := c.wait(); err != nil {
			t.Errorf("listen: %v", err)
		}
		pw.Close()
	})
	return c
}

// oneLine checks that err is one line and contains want.
func oneLine(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of more than one line: %q", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestCallEcho(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	input := strings.Repeat("The quick brown fox jumps over the lazy dog.\n", 5000) // several SDUs
	var out bytes.Buffer
	c := start(strings.NewReader(input), &out, nil, "call", "--control", n.sock, "--peak", "1000000", "--max-sdu", "1500", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("call: %v", err)
	}
	if out.String() != input {
		t.Errorf("got %d octets back, want the %d sent, byte for byte", out.Len(), len(input))
	}
	if c.stderr.Len() != 0 {
		t.Errorf("stderr: %q", c.stderr)
	}
}

// runningCall starts `condis call` with stdin and stdout pipes and returns
// once an SDU has gone round, so the call is up.
func runningCall(t *testing.T, n *testNode, dest string) (c *command, stdin *io.PipeWriter, stdout *bufio.Reader) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c = start(inR, outW, nil, "call", "--control", n.sock, "--linger", "0", dest)
	t.Cleanup(func() {
		inW.Close() // ends the command's stdin: the call ends, if it has not
		go io.Copy(io.Discard, outR)
		c.wait()
		outR.Close()
	})
	if _, err := inW.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	stdout = bufio.NewReader(outR)
	buf := make([]byte, 4)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	return c, inW, stdout
}

func TestCallFarEndClosesNormally(t *testing.T) {
	n := startNode(t)
	l := n.listenEcho(t, "echo")
	c, _, _ := runningCall(t, n, "local/echo")
	l.cancel() // the listener goes away: the node closes its calls normally
	if err := c.wait(); err != nil {
		t.Errorf("call: %v, want exit status 0", err)
	}
}

func TestCallAbnormalClose(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	c, _, _ := runningCall(t, n, "any/echo")
	n.mcm.LinkDown(ndis.StatusDestOutOfOrder)
	err := c.wait()
	want := "call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)"
	if err == nil || err.Error() != want {
		t.Errorf("call: %v\nwant %s", err, want)
	}
}

// TestCallAbnormalCloseExitStatus runs the real command as a process: exit
// status 1 and exactly one line on stderr.
func TestCallAbnormalCloseExitStatus(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	cmd := exec.Command(os.Args[0], "call", "--control", n.sock, "any/echo")
	cmd.Env = append(os.Environ(), "CONDIS_TEST_MAIN=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ping" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("echo: %q, %v (stderr %q)", buf, err, stderr.String())
	}
	n.mcm.LinkDown(ndis.StatusDestOutOfOrder)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1", err)
	}
	if want := "condis: call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)\n"; stderr.String() != want {
		t.Errorf("stderr %q\nwant   %q", stderr.String(), want)
	}
}

func TestCallEndsWithStdinExitStatus(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	cmd := exec.Command(os.Args[0], "call", "--control", n.sock, "--linger", "0", "echo")
	// Under -race a process exiting 0 waits a second for the detector's
	// report unless told not to.
	cmd.Env = append(os.Environ(), "CONDIS_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0")
	cmd.Stdin = strings.NewReader("hello, world\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("exit: %v (stderr %q)", err, stderr.String())
	}
	if stdout.String() != "hello, world\n" || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestCallErrors(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")

	// A client of its own refuses every call on "billing", as the ACL of a
	// node would.
	cl, st := memdrv.NewClient(n.m, "acl", n.mcm.Adapter(), n.fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	cl.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusFailure }
	n.mem.Drain()
	af := cl.Af()
	sap := cl.RegisterSap(af, "billing")
	n.mem.Drain()
	defer func() {
		cl.DeregisterSap(sap)
		n.mem.Drain()
		cl.CloseAf(af)
		n.mem.Drain()
		cl.Unbind()
	}()

	for _, c := range []struct{ dest, want string }{
		{"any/nosuch", "call any/nosuch failed: NDIS_STATUS_INVALID_SAP (cause 88, incompatible destination): no such service at the destination"},
		{"any/billing", "call any/billing failed: NDIS_STATUS_FAILURE (cause 21, call rejected): the called node refused the call (its trust setting or allow list, or its listener)"},
		{"mars/echo", `call mars/echo: unknown node "mars"`},
	} {
		cmd := start(strings.NewReader(""), io.Discard, nil, "call", "--control", n.sock, c.dest)
		err := cmd.wait()
		oneLine(t, err, c.want)
		if cmd.stderr.Len() != 0 {
			t.Errorf("call %s printed %q besides the error", c.dest, cmd.stderr)
		}
	}
	err := start(nil, io.Discard, nil, "call", "--control", n.sock, "--service", "premium", "any/echo").wait()
	oneLine(t, err, `--service: unknown service type "premium"`)
}

// TestCallFlowspecLimits: flag values a UNI 3.1 traffic descriptor cannot
// carry are refused before the node is asked (there is none here), in one
// line naming the flag and the limit.
func TestCallFlowspecLimits(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--peak", "900000000"}, "--peak 900000000 bytes/s is more than a UNI 3.1 traffic descriptor carries: at most 805306272 bytes/s"},
		{[]string{"--rate", "805306273"}, "--rate 805306273 bytes/s is more than a UNI 3.1 traffic descriptor carries: at most 805306272 bytes/s"},
		{[]string{"--rate", "1000", "--bucket", "900000000"}, "--bucket 900000000 bytes is more than a UNI 3.1 traffic descriptor carries: at most 805306272 bytes"},
		{[]string{"--rate", "200000", "--peak", "100000"}, "--rate 200000 bytes/s is above --peak 100000 bytes/s: the token rate must not exceed the peak"},
	} {
		args := append([]string{"call", "--control", sock}, c.args...)
		err := start(strings.NewReader(""), io.Discard, nil, append(args, "any/echo")...).wait()
		oneLine(t, err, c.want)
	}
}

func TestCallsJSON(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	_, _, _ = runningCall(t, n, "any/echo")
	var out bytes.Buffer
	if err := start(nil, &out, nil, "calls", "--control", n.sock, "--json").wait(); err != nil {
		t.Fatal(err)
	}
	var calls []node.CallInfo
	if err := json.Unmarshal(out.Bytes(), &calls); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	var found bool
	for _, c := range calls {
		if c.Kind == "outgoing" && c.Service == "echo" && c.Peer == "any" {
			found = true
			if c.State != "CONNECTED" || c.RxPackets != 1 || c.RxBytes != 4 || c.Tx == nil || c.Tx.Service != "best-effort" {
				t.Errorf("the call: %+v", c)
			}
		}
	}
	if !found || len(calls) != 2 {
		t.Errorf("calls: %s", out.String())
	}

	out.Reset()
	if err := start(nil, &out, nil, "calls", "--control", n.sock).wait(); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "VC ") ||
		!strings.Contains(out.String(), "CONNECTED") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestCallsJSONEmpty: a node without VCs is an empty JSON array.
func TestCallsJSONEmpty(t *testing.T) {
	n := startNode(t)
	var out bytes.Buffer
	if err := start(nil, &out, nil, "calls", "--control", n.sock, "--json").wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[]\n" {
		t.Errorf("output %q, want []", out.String())
	}
}

func TestNodeNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	want := "node not running (" + sock + ": no such socket)"
	for _, args := range [][]string{
		{"call", "--control", sock, "any/echo"},
		{"listen", "--control", sock, "echo"},
		{"calls", "--control", sock},
	} {
		c := start(strings.NewReader(""), io.Discard, nil, args...)
		err := c.wait()
		if err == nil || err.Error() != want {
			t.Errorf("condis %s: %v\nwant %s", strings.Join(args, " "), err, want)
		}
	}
	cmd := exec.Command(os.Args[0], "calls", "--control", sock)
	cmd.Env = append(os.Environ(), "CONDIS_TEST_MAIN=1", "CONDIS_CONTROL=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || stderr.String() != "condis: "+want+"\n" {
		t.Errorf("exit %v, stderr %q", err, stderr.String())
	}
	if err := start(nil, io.Discard, nil, "calls", "--control", "").wait(); err == nil || !strings.Contains(err.Error(), "no control socket") {
		t.Errorf("no socket: %v", err)
	}
}
