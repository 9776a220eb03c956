package main

import (
	"bytes"
	"testing"

	"github.com/condis-project/condis/node"
)

// TestVersionFlag: condis --version prints the build's module version,
// revision and toolchain, as node.Build reads them, and exits 0.
func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	if err := start(nil, &out, nil, "--version").wait(); err != nil {
		t.Fatal(err)
	}
	want := "condis " + node.Build().String() + "\n"
	if out.String() != want {
		t.Errorf("condis --version printed %q, want %q", out.String(), want)
	}
}
