package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
)

func TestNodeGCFloor(t *testing.T) {
	if b := heapFloor(0); b != nil {
		t.Errorf("heapFloor(0) allocates %d octets", len(b))
	}
	if b := heapFloor(1 << 20); len(b) != 1<<20 {
		t.Errorf("heapFloor(1 MiB) is %d octets", len(b))
	}
	err := start(nil, &bytes.Buffer{}, nil, "node", "--config", "x.toml", "--gc-floor", "-1").wait()
	oneLine(t, err, "--gc-floor must not be negative")
}

// TestNodeProfiling: the hidden --cpuprofile and --trace flags, and
// CONDIS_NODE_PROFILE, write a CPU profile and an execution trace; the
// variable also an allocation profile.
func TestNodeProfiling(t *testing.T) {
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	dir := t.TempDir()
	p := profiling{cpu: filepath.Join(dir, "cpu.pprof"), trace: filepath.Join(dir, "trace.out")}
	end, err := p.start("ignored.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(profileEnv, dir)
	end, err = profiling{}.start("/etc/alpha.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cpu.pprof", "trace.out", "alpha.cpu.pprof", "alpha.trace", "alpha.allocs.pprof"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (size %v)", f, err, fi)
		}
	}
}

// TestNodeLogFlags: --log-level and --log-format choose the level and the
// format, -v is --log-level debug, and a bad value is one line saying what
// is allowed.
func TestNodeLogFlags(t *testing.T) {
	for _, tc := range []struct {
		flags   logFlags
		enabled slog.Level // the lowest level logged
		json    bool
	}{
		{logFlags{level: "info", format: "text"}, slog.LevelInfo, false},
		{logFlags{level: "debug", format: "json"}, slog.LevelDebug, true},
		{logFlags{level: "WARN", format: "JSON"}, slog.LevelWarn, true},
		{logFlags{level: "error", format: "text"}, slog.LevelError, false},
		{logFlags{level: "info", format: "text", verbose: true}, slog.LevelDebug, false},
		{logFlags{level: "debug", format: "text", verbose: true, levelSet: true}, slog.LevelDebug, false},
	} {
		var b bytes.Buffer
		log, err := tc.flags.logger(&b)
		if err != nil {
			t.Errorf("%+v: %v", tc.flags, err)
			continue
		}
		ctx := context.Background()
		if !log.Enabled(ctx, tc.enabled) || log.Enabled(ctx, tc.enabled-1) {
			t.Errorf("%+v: does not log from %v on", tc.flags, tc.enabled)
		}
		log.Error("x", "k", "v")
		var obj map[string]any
		isJSON := json.Unmarshal(b.Bytes(), &obj) == nil && obj["msg"] == "x" && obj["k"] == "v"
		if isJSON != tc.json || !tc.json && !strings.Contains(b.String(), " msg=x k=v\n") {
			t.Errorf("%+v: logged %q", tc.flags, b.String())
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "loud"}, `node: --log-level "loud": want debug, info, warn or error`},
		{[]string{"--log-format", "xml"}, `node: --log-format "xml": want text or json`},
		{[]string{"-v", "--log-level", "warn"}, "node: -v is --log-level debug; give one or the other, not -v with --log-level warn"},
		{[]string{"--procs", "0"}, `node: --procs "0": want auto or a number of CPUs from 1 to 1024`},
		{[]string{"--procs", "all"}, `node: --procs "all": want auto or a number of CPUs from 1 to 1024`},
		{[]string{"--procs", "1025"}, `node: --procs "1025": want auto or a number of CPUs from 1 to 1024`},
	} {
		err := start(nil, &bytes.Buffer{}, nil, append([]string{"node", "--config", "x.toml"}, tc.args...)...).wait()
		oneLine(t, err, tc.want)
	}
}

// TestNodeHelpHasTheConfigReference: condis node --help shows every key of
// the configuration file (node.ConfigReference) and the log levels.
func TestNodeHelpHasTheConfigReference(t *testing.T) {
	var out bytes.Buffer
	if err := start(nil, &out, nil, "node", "--help").wait(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{node.ConfigReference(), "--log-level string", "--log-format string"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("condis node --help lacks %q:\n%s", want, out.String())
		}
	}
}

// TestNodeErrorSaysItOnce: a node that cannot open its control socket says
// so in one line that names the socket once ("control socket X: control
// socket X: ..." was the old text).
func TestNodeErrorSaysItOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(dir, "alpha"); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "alpha.sock")
	if err := os.WriteFile(sock, nil, 0o644); err != nil { // a file, not a socket
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "alpha.toml")
	if err := os.WriteFile(conf, []byte(`name = "alpha"
listen = "127.0.0.1:0"
control = "alpha.sock"
ca = "ca.pem"
cert = "alpha.pem"
key = "alpha.key"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := start(nil, &bytes.Buffer{}, nil, "node", "--config", conf, "--log-level", "error").wait()
	oneLine(t, err, "node alpha: control socket "+sock+": the file exists and is not a socket")
	if n := strings.Count(err.Error(), "control socket"); n != 1 {
		t.Errorf("%q says %q %d times", err, "control socket", n)
	}
}
