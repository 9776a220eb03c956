package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/node"
)

// procCall is a `condis call -v` process, its stdin a pipe.
type procCall struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *lockedBuffer
	vc             string
}

// startProcCall runs `condis call -v ARGS...` against sock and returns
// once it said which VC it is on.
func (c *cluster) call(t *testing.T, ctx context.Context, sock string, args ...string) *procCall {
	t.Helper()
	pc := &procCall{stdout: new(lockedBuffer), stderr: new(lockedBuffer)}
	pc.cmd = exec.CommandContext(ctx, c.bin, append([]string{"call", "--control", sock, "-v", "--linger", "0"}, args...)...)
	pc.cmd.Stdout, pc.cmd.Stderr = pc.stdout, pc.stderr
	var err error
	if pc.stdin, err = pc.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := pc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.stdin.Close(); pc.cmd.Process.Kill(); pc.cmd.Wait() })
	pc.vc = waitLine(t, "call "+strings.Join(args, " "), pc.stderr, connectedRe)[1]
	return pc
}

// listen runs `condis listen -v ARGS...` against sock until the test ends
// and returns its stdout and stderr once it listens.
func (c *cluster) listen(t *testing.T, ctx context.Context, sock string, args ...string) (stdout, stderr *lockedBuffer) {
	t.Helper()
	stdout, stderr = new(lockedBuffer), new(lockedBuffer)
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"listen", "--control", sock, "-v"}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitLine(t, "listen "+strings.Join(args, " "), stderr, regexp.MustCompile(`listening on `))
	return stdout, stderr
}

// condis runs the condis command line args to its end: its stdout, and
// its stderr as an error if it failed.
func (c *cluster) condis(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// callsJSON is `condis calls --json` of the node at sock, by VC.
func (c *cluster) callsJSON(t *testing.T, ctx context.Context, sock string) map[string]node.CallInfo {
	t.Helper()
	out, err := c.condis(ctx, "calls", "--control", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []node.CallInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	m := map[string]node.CallInfo{}
	for _, ci := range list {
		m[ci.Vc] = ci
	}
	return m
}

// wantStderr checks that err is a failed command whose stderr is the one
// line "condis: " + want.
func wantStderr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.HasSuffix(err.Error(), ": condis: "+want) {
		t.Errorf("%s: %v\nwant stderr %q", what, err, "condis: "+want)
	}
}

// TestVcCommandsEndToEnd runs the commands that act on calls (multipoint
// call, party add and drop, modify, hangup) and the reports of condis
// call (granted flowspec, policing) against two `condis node` processes
// (issue 10 item 6), with their error cases: unknown VC, not a multipoint
// VC, QoS refused by the far end (beta's max_rate) and by the call
// manager, flowspecs out of range.
func TestVcCommandsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes; skipped with -short")
	}
	c := startClusterWith(t, map[string]string{"beta": "max_rate = 100000\n"})
	alpha, beta := filepath.Join(c.dir, "alpha.sock"), filepath.Join(c.dir, "beta.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l1, _ := c.listen(t, ctx, beta, "l1")
	l2, l2err := c.listen(t, ctx, beta, "l2")
	l3, _ := c.listen(t, ctx, beta, "l3")
	c.listen(t, ctx, beta, "--echo", "echo")
	sink, _ := c.listen(t, ctx, beta, "sink")

	t.Run("multipoint", func(t *testing.T) {
		// The default SDU size, the path's own limit: the leaf node's
		// limit, which path MTU discovery moves on its own, does not
		// refuse the ADD PARTY (it only bounds what the leaf sends).
		mp := c.call(t, ctx, alpha, "beta/l1", "beta/l2")
		parties := waitParties(t, mp.stderr, 2)
		if len(parties) != 2 || parties[0][2] != "beta/l1" || parties[1][2] != "beta/l2" {
			t.Fatalf("call said %q", mp.stderr)
		}
		fmt.Fprintln(mp.stdin, "to both leaves")
		for _, l := range []*lockedBuffer{l1, l2} {
			waitLine(t, "leaf", l, regexp.MustCompile(`to both leaves\n`))
		}
		root := c.callsJSON(t, ctx, alpha)[mp.vc]
		if root.Parties != 2 || len(root.Leaves) != 2 || root.Leaves[0].Dest != "beta/l1" || root.Leaves[1].Party != parties[1][1] {
			t.Errorf("calls: %+v", root)
		}

		// party add and drop from another "terminal".
		out, err := c.condis(ctx, "party", "add", "--control", alpha, mp.vc, "beta/l3")
		m := regexp.MustCompile(`^` + regexp.QuoteMeta(mp.vc) + `: (party#\d+) added \(beta/l3\)\n$`).FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("party add: %q, %v", out, err)
		}
		waitLine(t, "call", mp.stderr, regexp.MustCompile(regexp.QuoteMeta(mp.vc+": party "+m[1]+" (beta/l3) added")))
		fmt.Fprintln(mp.stdin, "to three leaves")
		for _, l := range []*lockedBuffer{l1, l2, l3} {
			waitLine(t, "leaf", l, regexp.MustCompile(`to three leaves\n`))
		}
		if out, err := c.condis(ctx, "party", "drop", "--control", alpha, mp.vc, parties[1][1]); err != nil || out != mp.vc+": "+parties[1][1]+" dropped\n" {
			t.Fatalf("party drop: %q, %v", out, err)
		}
		waitLine(t, "call", mp.stderr, regexp.MustCompile(regexp.QuoteMeta(mp.vc+": "+parties[1][1]+" (beta/l2) dropped (condis party drop)")))
		waitLine(t, "l2", l2err, regexp.MustCompile(`vc#\d+: call closed by the far end`))

		_, err = c.condis(ctx, "party", "add", "--control", alpha, "vc#99999", "beta/l3")
		wantStderr(t, "party add to an unknown VC", err, "party add vc#99999: no such VC on this node (condis calls lists them)")
		_, err = c.condis(ctx, "party", "drop", "--control", alpha, mp.vc, "party#99999")
		wantStderr(t, "party drop of an unknown party", err, "party drop "+mp.vc+": no party party#99999 (its parties: "+parties[0][1]+", "+m[1]+")")
		_, err = c.condis(ctx, "modify", "--control", alpha, mp.vc, "--peak", "9600")
		wantStderr(t, "modify of a multipoint call", err, "modify "+mp.vc+" refused: NDIS_STATUS_NOT_SUPPORTED (cause 63, service or option not available, unspecified): "+
			"only the rates and the bucket of a point-to-point call can change (not its service type, its SDU size, or a multipoint call's)")

		// hangup: the call in the other terminal ends, exit status 0.
		if out, err := c.condis(ctx, "hangup", "--control", alpha, mp.vc); err != nil || out != mp.vc+": hung up\n" {
			t.Fatalf("hangup: %q, %v", out, err)
		}
		if err := mp.cmd.Wait(); err != nil {
			t.Errorf("the multipoint call's exit: %v (stderr %q)", err, mp.stderr)
		}
		if want := "condis: call " + mp.vc + " hung up on this node (condis hangup)\n"; !strings.HasSuffix(mp.stderr.String(), want) {
			t.Errorf("the multipoint call's stderr %q, want it to end with %q", mp.stderr, want)
		}
	})

	t.Run("modify", func(t *testing.T) {
		pc := c.call(t, ctx, alpha, "--rate", "1000", "--peak", "2000", "beta/echo")
		// Rates travel in whole cells: 21 and 42 of 48 octets.
		granted := regexp.MustCompile(regexp.QuoteMeta("condis: "+pc.vc+": granted flowspec controlled-load rate=1008 peak=2016 sdu=") +
			`\d+` + regexp.QuoteMeta(" both ways, not what was asked (rate 1000, peak 2000)\n"))
		// It follows the connected line, which the call helper waited for.
		waitLine(t, "call", pc.stderr, granted)
		if strings.Count(pc.stderr.String(), "granted") != 1 {
			t.Errorf("not one granted-flowspec line in %q", pc.stderr)
		}

		out, err := c.condis(ctx, "modify", "--control", alpha, pc.vc, "--rate", "1500", "--peak", "3000")
		if err != nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(pc.vc+": granted transmit controlled-load rate=1536 peak=3024 sdu=")+`\d+, receive controlled-load rate=1536 peak=3024 sdu=\d+\n$`).MatchString(out) {
			t.Fatalf("modify: %q, %v", out, err)
		}
		waitLine(t, "call", pc.stderr, regexp.MustCompile(regexp.QuoteMeta(pc.vc+": flowspec changed: transmit controlled-load rate=1536 peak=3024")))
		fmt.Fprintln(pc.stdin, "after the change")
		waitLine(t, "echo", pc.stdout, regexp.MustCompile(`after the change\n`))

		for _, e := range []struct {
			args []string
			want string
		}{
			// beta's max_rate: MODIFY REJECT, cause 37.
			{[]string{pc.vc, "--rate", "200000", "--peak", "400000"}, "modify " + pc.vc + " refused: NDIS_STATUS_CELLRATE_NOT_AVAILABLE (cause 37, user cell rate not available): a node on the call's path does not grant that rate (its max_rate)"},
			// The call's flowspec with the new rate: above its peak.
			{[]string{pc.vc, "--rate", "5000"}, "modify " + pc.vc + ": --rate 5000 bytes/s is above --peak 3024 bytes/s: the token rate must not exceed the peak"},
			{[]string{pc.vc, "--peak", "900000000"}, "--peak 900000000 bytes/s is more than a UNI 3.1 traffic descriptor carries: at most 805306272 bytes/s (16777214 cells of 48 octets)"},
			{[]string{"vc#99999", "--rate", "1000"}, "modify vc#99999: no such VC on this node (condis calls lists them)"},
		} {
			_, err := c.condis(ctx, append([]string{"modify", "--control", alpha}, e.args...)...)
			wantStderr(t, "modify "+strings.Join(e.args, " "), err, e.want)
		}
		if ci := c.callsJSON(t, ctx, alpha)[pc.vc]; ci.Tx == nil || ci.Tx.Rate != 1536 || ci.Tx.Peak != 3024 {
			t.Errorf("after the refusals: tx %+v, want rate 1536 peak 3024 still", ci.Tx)
		}
		_, err = c.condis(ctx, "party", "add", "--control", alpha, pc.vc, "beta/l1")
		wantStderr(t, "party add to a point-to-point call", err, "party add "+pc.vc+": not a multipoint call; parties are added to a call made with condis call --multipoint (or with several destinations)")

		if _, err := c.condis(ctx, "hangup", "--control", alpha, pc.vc); err != nil {
			t.Fatal(err)
		}
		if err := pc.cmd.Wait(); err != nil {
			t.Errorf("call after hangup: %v", err)
		}
		_, err = c.condis(ctx, "hangup", "--control", alpha, pc.vc)
		wantStderr(t, "a second hangup", err, "hangup "+pc.vc+": no such VC on this node (condis calls lists them)")
	})

	t.Run("policing", func(t *testing.T) {
		// 1008 bytes/s and SDUs of 1000 octets: written at once, few
		// conform; the others are dropped by policing. A reliable VC, so
		// that what conforms all arrives.
		pc := c.call(t, ctx, alpha, "--reliable", "--rate", "1000", "--peak", "2000", "--max-sdu", "1000", "beta/sink")
		pc.stdin.Write([]byte(strings.Repeat("x", 20000)))
		var ci node.CallInfo
		for deadline := time.Now().Add(20 * time.Second); ; {
			ci = c.callsJSON(t, ctx, alpha)[pc.vc]
			if ci.TxPackets+ci.TxErrors == 20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the 20 SDUs were never completed: %+v", ci)
			}
			time.Sleep(20 * time.Millisecond) // another process is sending
		}
		if ci.TxPoliced == 0 || ci.TxPoliced != ci.TxErrors {
			t.Errorf("calls: %d policed, %d failed sends, want every failure policed and some", ci.TxPoliced, ci.TxErrors)
		}
		table, _ := c.condis(ctx, "calls", "--control", alpha)
		if !strings.Contains(table, "POLICED") {
			t.Errorf("calls table has no POLICED column:\n%s", table)
		}
		pc.stdin.Close()
		if err := pc.cmd.Wait(); err != nil {
			t.Fatalf("call: %v (stderr %q)", err, pc.stderr)
		}
		m := regexp.MustCompile(`condis: (\d+) SDUs of (\d+) dropped by policing \(transmit flowspec controlled-load rate=1008 peak=2016 sdu=1000\)\n$`).FindStringSubmatch(pc.stderr.String())
		if m == nil {
			t.Fatalf("no policing report in %q", pc.stderr)
		}
		t.Logf("%s", strings.TrimSpace(m[0]))
		policed, _ := strconv.ParseUint(m[1], 10, 64)
		if sent, _ := strconv.Atoi(m[2]); sent != 20 || policed != ci.TxPoliced {
			t.Errorf("report %q; calls said %d policed of 20", m[0], ci.TxPoliced)
		}
		want := int(20-policed) * 1000
		for deadline := time.Now().Add(10 * time.Second); len(sink.String()) < want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := len(sink.String()); got != want {
			t.Errorf("the sink received %d octets, want the %d of the SDUs not policed", got, want)
		}
	})
}
