// Package layers holds the test that keeps condis's packages layered as
// design.md §2 draws them: lower layers never import higher ones, and the
// composition root never imports the test drivers.
package layers

import (
	"go/build"
	"path/filepath"
	"slices"
	"testing"
)

const module = "github.com/condis-project/condis/"

// forbidden lists, for a package (by its directory under the module
// root), the packages its non-test files must not import.
var forbidden = map[string][]string{
	"uni":       {"ndis", "transport", "mcm", "q2931"}, // the codec is pure: no NDIS, no I/O
	"transport": {"uni", "ndis", "mcm"},                // links carry octets; the codec is above them
	"q2931":     {"mcm", "memdrv", "node", "transport"},
	"ndis":      {"uni", "q2931", "mcm", "memdrv"}, // the mediator knows no address family
	"node":      {"memdrv"},                        // the composition root does not import test drivers
	"mcm":       {"memdrv", "node"},
}

// TestLayering: no package imports one it must not.
func TestLayering(t *testing.T) {
	for dir, bad := range forbidden {
		p, err := build.Default.ImportDir(filepath.Join("..", "..", dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, b := range bad {
			if slices.Contains(p.Imports, module+b) {
				t.Errorf("package %s imports %s: lower layers never import higher ones (design.md §2)", dir, b)
			}
		}
	}
}
