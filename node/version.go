package node

import (
	"runtime/debug"
	"strings"
)

// BuildInfo says which build of condis this process runs, as the Go
// toolchain recorded it in the binary (runtime/debug.ReadBuildInfo).
type BuildInfo struct {
	// Module is the main module's version: a release tag ("v1.2.0"), a
	// pseudo-version made from the commit ("v0.0.0-20250101120000-
	// 6fc3cb8a1b2c+dirty"), "(devel)", or "" when the binary carries no
	// build information.
	Module string
	// Revision is the commit the binary was built from and Modified
	// whether the work tree had changes; "" and false when the build did
	// not record them (go install pkg@version, -buildvcs=false, go test).
	Revision string
	Modified bool
	// Go is the toolchain that built it ("go1.26.0").
	Go string
}

// Build returns the build information of this process.
func Build() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildInfo{}
	}
	b := BuildInfo{Module: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Version is the build in one word, as `condis status` and the "node up"
// log line show it: the module version when it is a real one, else
// "devel" and the first 12 digits of the revision ("+dirty" if the tree
// had changes); "" if the build recorded neither.
func (b BuildInfo) Version() string {
	if b.Module != "" && b.Module != "(devel)" {
		return b.Module
	}
	if b.Revision == "" {
		return b.Module
	}
	v := "devel " + b.Revision[:min(len(b.Revision), 12)]
	if b.Modified {
		v += "+dirty"
	}
	return v
}

// String is what `condis --version` prints after the program's name: the
// module version, the revision in full and the toolchain, as far as the
// build recorded them.
func (b BuildInfo) String() string {
	v := b.Module
	if v == "" {
		v = "(unknown version)"
	}
	var more []string
	if b.Revision != "" {
		r := "revision " + b.Revision
		if b.Modified {
			r += ", modified"
		}
		more = append(more, r)
	}
	if b.Go != "" {
		more = append(more, b.Go)
	}
	if len(more) > 0 {
		v += " (" + strings.Join(more, ", ") + ")"
	}
	return v
}

// Version is the version of condis this process runs: Build().Version().
func Version() string { return Build().Version() }
