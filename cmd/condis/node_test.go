package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
// CONDIS_NODE_PROFILE, write a CPU profile and an execution trace.
func TestNodeProfiling(t *testing.T) {
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
	for _, f := range []string{"cpu.pprof", "trace.out", "alpha.cpu.pprof", "alpha.trace"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (size %v)", f, err, fi)
		}
	}
}
