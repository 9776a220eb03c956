package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/condis-project/condis/internal/procs"
)

// procsWindow is how often an auto node looks at its CPU use: long enough
// that a burst of calls does not move it, short enough that a node under
// load has its CPUs within seconds.
const procsWindow = time.Second

// maxProcsFlag is the most --procs takes, the Go runtime's own limit.
const maxProcsFlag = 1024

// procsChoice is --procs: auto (fixed 0), or a fixed number of Ps; keep
// leaves the runtime's choice alone (GOMAXPROCS in the environment and no
// --procs).
type procsChoice struct {
	fixed int
	keep  bool
}

// parseProcs reads --procs; given tells whether it was on the command line.
func parseProcs(v string, given bool) (procsChoice, error) {
	if v == "auto" {
		_, env := os.LookupEnv("GOMAXPROCS")
		return procsChoice{keep: (env && !given) || !procs.Measured}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxProcsFlag {
		return procsChoice{}, fmt.Errorf("node: --procs %q: want auto or a number of CPUs from 1 to %d", v, maxProcsFlag)
	}
	return procsChoice{fixed: n}, nil
}

// run puts the choice in force until ctx ends, and returns what puts the
// Ps the process had back (a node run inside a test must not leave the
// test's process on one CPU).
func (c procsChoice) run(ctx context.Context, log *slog.Logger) (restore func()) {
	if c.keep {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0) // what Go gives this process: its CPUs, or its cgroup's limit
	if c.fixed > 0 {
		runtime.GOMAXPROCS(c.fixed)
		return func() { runtime.GOMAXPROCS(prev) }
	}
	stop := (&procs.Controller{
		Window: procsWindow,
		Max:    prev,
		Read:   procs.ProcessAndHost,
		Set:    func(n int) { runtime.GOMAXPROCS(n) },
		Changed: func(from, to int, s procs.Sample) {
			log.Info("node CPUs changed", "procs", to, "was", from,
				"busy_cpus", round2(s.Busy), "host_idle_cpus", round2(s.HostIdle))
		},
	}).Start(ctx)
	return func() {
		stop()
		runtime.GOMAXPROCS(prev)
	}
}

// round2 is x to two decimals, for a log line.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
