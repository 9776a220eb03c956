package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/condis-project/condis/internal/procs"
)

func TestParseProcs(t *testing.T) {
	for _, tc := range []struct {
		v     string
		given bool
		env   string // GOMAXPROCS, "" for none
		want  procsChoice
	}{
		{"auto", false, "", procsChoice{keep: !procs.Measured}},
		{"auto", false, "3", procsChoice{keep: true}}, // the environment's choice stands
		{"auto", true, "3", procsChoice{keep: !procs.Measured}},
		{"2", false, "", procsChoice{fixed: 2}},
		{"1024", true, "3", procsChoice{fixed: 1024}},
	} {
		if tc.env != "" {
			t.Setenv("GOMAXPROCS", tc.env)
		}
		got, err := parseProcs(tc.v, tc.given)
		if err != nil || got != tc.want {
			t.Errorf("parseProcs(%q, %v) with GOMAXPROCS=%q = %+v, %v; want %+v", tc.v, tc.given, tc.env, got, err, tc.want)
		}
	}
}

// A node's --procs holds while it runs, and the process gets its Ps back
// when it stops (nodes run inside tests).
func TestProcsRunAndRestore(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	restore := procsChoice{fixed: 3}.run(context.Background(), log)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("--procs 3: GOMAXPROCS %d", got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("after --procs 3: GOMAXPROCS %d, want %d back", got, prev)
	}
	if !procs.Measured {
		return
	}
	restore = procsChoice{}.run(context.Background(), log)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("--procs auto starts with GOMAXPROCS %d, want 1", got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("after --procs auto: GOMAXPROCS %d, want %d back", got, prev)
	}
}
