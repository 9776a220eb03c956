package node

import "testing"

// TestBuildInfoVersion: a release or pseudo-version is shown as it is; a
// devel build by its revision; --version's line names all there is.
func TestBuildInfoVersion(t *testing.T) {
	const rev = "6fc3cb8a1b2c3d4e5f60718293a4b5c6d7e8f901"
	for _, tc := range []struct {
		b             BuildInfo
		version, full string
	}{
		{BuildInfo{Module: "v1.2.0", Go: "go1.26.0"}, "v1.2.0", "v1.2.0 (go1.26.0)"},
		{BuildInfo{Module: "v0.0.0-20250101120000-6fc3cb8a1b2c+dirty", Revision: rev, Modified: true, Go: "go1.26.0"},
			"v0.0.0-20250101120000-6fc3cb8a1b2c+dirty", "v0.0.0-20250101120000-6fc3cb8a1b2c+dirty (revision " + rev + ", modified, go1.26.0)"},
		{BuildInfo{Module: "(devel)", Revision: rev, Go: "go1.26.0"}, "devel 6fc3cb8a1b2c", "(devel) (revision " + rev + ", go1.26.0)"},
		{BuildInfo{Module: "(devel)", Revision: rev, Modified: true}, "devel 6fc3cb8a1b2c+dirty", "(devel) (revision " + rev + ", modified)"},
		{BuildInfo{Module: "(devel)", Go: "go1.26.0"}, "(devel)", "(devel) (go1.26.0)"},
		{BuildInfo{}, "", "(unknown version)"},
	} {
		if got := tc.b.Version(); got != tc.version {
			t.Errorf("%+v: Version() = %q, want %q", tc.b, got, tc.version)
		}
		if got := tc.b.String(); got != tc.full {
			t.Errorf("%+v: String() = %q, want %q", tc.b, got, tc.full)
		}
	}
	if Version() != Build().Version() {
		t.Errorf("Version() = %q, Build().Version() = %q", Version(), Build().Version())
	}
}
