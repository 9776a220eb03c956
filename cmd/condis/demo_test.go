package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `condis demo --trace DIR` writes DIR/calls.md with a Mermaid chart per
// call of the story (their content: internal/demo's TestNetworkDemoTrace);
// with --in-memory there is no Q.2931 to draw and --trace is refused with
// one line saying so.
func TestDemoTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var out bytes.Buffer
	r := root()
	r.SetOut(&out)
	r.SetArgs([]string{"demo", "--quiet", "--t309", "1s", "--trace", dir})
	if err := r.Execute(); err != nil {
		t.Fatalf("condis demo --trace: %v\n%s", err, out.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "calls.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), "```mermaid\nsequenceDiagram\n"); n != 7 {
		t.Errorf("calls.md has %d sequence diagrams, want 7 (one per call of the story)", n)
	}

	r = root()
	r.SetOut(&out)
	r.SetArgs([]string{"demo", "--in-memory", "--trace", dir})
	err = r.Execute()
	if err == nil || !strings.Contains(err.Error(), "--trace") || !strings.Contains(err.Error(), "--in-memory") || strings.Contains(err.Error(), "\n") {
		t.Errorf("condis demo --in-memory --trace: %v; want one line naming both flags", err)
	}
}
