package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/condis-project/condis/pki"
)

// run runs the condis command line in process and returns its output and
// the error main would print after "condis: ".
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	r := root()
	r.SetArgs(args)
	r.SetOut(&out)
	r.SetErr(&out)
	err := r.Execute()
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("condis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// wantErr runs args and checks the error's text; errors must be one line
// and print nothing else (no usage).
func wantErr(t *testing.T, want string, args ...string) {
	t.Helper()
	out, err := run(t, args...)
	if err == nil {
		t.Fatalf("condis %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	if err.Error() != want {
		t.Errorf("condis %s:\n got %s\nwant %s", strings.Join(args, " "), err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of more than one line: %q", err)
	}
	if out != "" {
		t.Errorf("condis %s printed %q besides the error", strings.Join(args, " "), out)
	}
}

func wantMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCertInitIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")

	out := mustRun(t, "cert", "init", "--dir", dir)
	for _, s := range []string{"made cluster CA", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "keep it off the nodes", "next: condis cert issue --dir " + dir + " NAME"} {
		if !strings.Contains(out, s) {
			t.Errorf("init output lacks %q:\n%s", s, out)
		}
	}
	wantMode(t, dir, os.ModeDir|0o700)
	wantMode(t, filepath.Join(dir, "ca.pem"), 0o644)
	wantMode(t, filepath.Join(dir, "ca.key"), 0o600)
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"alpha", "beta.example"} {
		out = mustRun(t, "cert", "issue", "--dir", dir, name)
		for _, s := range []string{`issued certificate of node "` + name + `"`, ca.Cert.Subject.CommonName, filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")} {
			if !strings.Contains(out, s) {
				t.Errorf("issue output lacks %q:\n%s", s, out)
			}
		}
		wantMode(t, filepath.Join(dir, name+".pem"), 0o644)
		wantMode(t, filepath.Join(dir, name+".key"), 0o600)
		id, err := pki.LoadNode(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != name || id.Certificate.Leaf.Issuer.CommonName != ca.Cert.Subject.CommonName {
			t.Errorf("%s: identity %q issued by %q", name, id.Name, id.Certificate.Leaf.Issuer.CommonName)
		}
	}
}

func TestCertRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "cert", "init", "--dir", dir)
	mustRun(t, "cert", "issue", "--dir", dir, "alpha")
	caPEM, caKey := readFile(t, filepath.Join(dir, "ca.pem")), readFile(t, filepath.Join(dir, "ca.key"))
	aPEM, aKey := readFile(t, filepath.Join(dir, "alpha.pem")), readFile(t, filepath.Join(dir, "alpha.key"))

	wantErr(t, "cert init: "+filepath.Join(dir, "ca.pem")+" already exists (use --force to replace it; every node certificate must then be issued again)",
		"cert", "init", "--dir", dir)
	wantErr(t, "cert issue: "+filepath.Join(dir, "alpha.pem")+" already exists (use --force to replace it)",
		"cert", "issue", "--dir", dir, "alpha")

	// One file of the pair is enough to refuse.
	if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "cert init: "+filepath.Join(dir, "ca.key")+" already exists (use --force to replace it; every node certificate must then be issued again)",
		"cert", "init", "--dir", dir)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "alpha.pem")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "cert issue: "+filepath.Join(dir, "alpha.key")+" already exists (use --force to replace it)",
		"cert", "issue", "--dir", dir, "alpha")
	if err := os.WriteFile(filepath.Join(dir, "alpha.pem"), aPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string][]byte{"ca.pem": caPEM, "ca.key": caKey, "alpha.pem": aPEM, "alpha.key": aKey} {
		if !bytes.Equal(readFile(t, filepath.Join(dir, path)), want) {
			t.Errorf("%s changed", path)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 4 {
		t.Errorf("files left: %v", m)
	}
}

func TestCertForce(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "cert", "init", "--dir", dir)
	mustRun(t, "cert", "issue", "--dir", dir, "alpha")
	oldCA, oldKey := readFile(t, filepath.Join(dir, "ca.pem")), readFile(t, filepath.Join(dir, "alpha.key"))

	// Make the modes wrong, to see --force set them.
	for _, f := range []string{"ca.key", "alpha.key", "ca.pem"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o666); err != nil {
			t.Fatal(err)
		}
	}

	out := mustRun(t, "cert", "init", "--dir", dir, "--force")
	if !strings.Contains(out, "replaced the cluster CA") || !strings.Contains(out, "issue them again with --force: alpha.pem") {
		t.Errorf("init --force output:\n%s", out)
	}
	if bytes.Equal(readFile(t, filepath.Join(dir, "ca.pem")), oldCA) {
		t.Error("init --force kept the old CA")
	}
	wantMode(t, filepath.Join(dir, "ca.pem"), 0o644)
	wantMode(t, filepath.Join(dir, "ca.key"), 0o600)
	if _, err := pki.LoadCA(dir); err != nil {
		t.Fatal(err)
	}
	// alpha's certificate is from the old CA now.
	if _, err := pki.LoadNode(dir, "alpha"); err == nil {
		t.Error("alpha's old certificate verifies against the new CA")
	}

	out = mustRun(t, "cert", "issue", "--force", "--dir", dir, "alpha")
	if !strings.Contains(out, `replaced the certificate of node "alpha"`) {
		t.Errorf("issue --force output:\n%s", out)
	}
	if bytes.Equal(readFile(t, filepath.Join(dir, "alpha.key")), oldKey) {
		t.Error("issue --force kept the old key")
	}
	wantMode(t, filepath.Join(dir, "alpha.pem"), 0o644)
	wantMode(t, filepath.Join(dir, "alpha.key"), 0o600)
	if id, err := pki.LoadNode(dir, "alpha"); err != nil || id.Name != "alpha" {
		t.Fatalf("after issue --force: %v", err)
	}

	// --force on nothing to replace is an ordinary issue; no temporary
	// files are left behind.
	out = mustRun(t, "cert", "issue", "--force", "--dir", dir, "beta")
	if !strings.Contains(out, `issued certificate of node "beta"`) {
		t.Errorf("issue --force of a new node:\n%s", out)
	}
	if _, err := pki.LoadNode(dir, "beta"); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	mustRun(t, "cert", "init", "--force", "--dir", fresh)
	if _, err := pki.LoadCA(fresh); err != nil {
		t.Fatal(err)
	}
	wantMode(t, fresh, os.ModeDir|0o700)
	for _, d := range []string{dir, fresh} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s: temporary file %s left", d, e.Name())
			}
		}
	}
}

func TestCertErrors(t *testing.T) {
	dir := t.TempDir()
	noCA := filepath.Join(dir, "empty")
	if err := os.Mkdir(noCA, 0o700); err != nil {
		t.Fatal(err)
	}
	cluster := filepath.Join(dir, "cluster")
	mustRun(t, "cert", "init", "--dir", cluster)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(dir, "my cluster")
	onlyKey := filepath.Join(dir, "onlykey")
	if err := os.Mkdir(onlyKey, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(onlyKey, "ca.key"), readFile(t, filepath.Join(cluster, "ca.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	mismatch := filepath.Join(dir, "mismatch")
	mustRun(t, "cert", "init", "--dir", mismatch)
	if err := os.WriteFile(filepath.Join(mismatch, "ca.key"), readFile(t, filepath.Join(cluster, "ca.key")), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cert", "issue", "--dir", noCA, "alpha"}, "cert issue: " + filepath.Join(noCA, "ca.key") + ": no such file (run condis cert init --dir " + noCA + " first)"},
		{[]string{"cert", "issue", "--dir", filepath.Join(dir, "nowhere"), "alpha"}, "cert issue: " + filepath.Join(dir, "nowhere", "ca.key") + ": no such file (run condis cert init --dir " + filepath.Join(dir, "nowhere") + " first)"},
		{[]string{"cert", "issue", "--dir", spaced, "alpha"}, "cert issue: " + filepath.Join(spaced, "ca.key") + ": no such file (run condis cert init --dir '" + spaced + "' first)"},
		{[]string{"cert", "issue", "--dir", onlyKey, "alpha"}, "cert issue: " + filepath.Join(onlyKey, "ca.pem") + ": no such file (run condis cert init --dir " + onlyKey + " first)"},
		{[]string{"cert", "issue", "--dir", mismatch, "alpha"}, "cert issue: " + filepath.Join(mismatch, "ca.key") + " does not hold the key of " + filepath.Join(mismatch, "ca.pem")},
		{[]string{"cert", "issue", "--force", "--dir", mismatch, "alpha"}, "cert issue: " + filepath.Join(mismatch, "ca.key") + " does not hold the key of " + filepath.Join(mismatch, "ca.pem")},
		{[]string{"cert", "issue", "--dir", cluster, "Alpha"}, `cert issue: node name "Alpha": character 'A' is not a lower-case letter, digit, '-' or '.'`},
		{[]string{"cert", "issue", "--dir", cluster, "-alpha-"}, `cert issue: unknown shorthand flag: 'a' in -alpha- (see condis cert issue --help)`},
		{[]string{"cert", "issue", "--dir", cluster, "--", "-alpha"}, `cert issue: node name "-alpha": a label starts or ends with '-'`},
		{[]string{"cert", "issue", "--dir", cluster, "a/b"}, `cert issue: node name "a/b": character '/' is not a lower-case letter, digit, '-' or '.'`},
		{[]string{"cert", "issue", "--dir", cluster, "ca"}, `cert issue: "ca" cannot be a node name: ca.pem and ca.key are the CA's files`},
		{[]string{"cert", "issue", "--force", "--dir", cluster, "ca"}, `cert issue: "ca" cannot be a node name: ca.pem and ca.key are the CA's files`},
		{[]string{"cert", "issue", "--dir", cluster}, "cert issue: want a node name: condis cert issue --dir DIR NAME"},
		{[]string{"cert", "issue", "--dir", cluster, "a", "b"}, "cert issue: want one node name, got 2: a b"},
		{[]string{"cert", "issue", "alpha"}, "cert issue: --dir DIR is required (the cluster directory made by condis cert init)"},
		{[]string{"cert", "issue", "--dri", cluster, "alpha"}, "cert issue: unknown flag: --dri (see condis cert issue --help)"},
		{[]string{"cert", "init"}, "cert init: --dir DIR is required (the cluster directory to create)"},
		{[]string{"cert", "init", "--dir", cluster, "extra"}, `cert init: unexpected argument "extra" (see condis cert init --help)`},
		{[]string{"cert", "init", "--dir", filepath.Join(file, "sub")}, "cert init: mkdir " + file + ": not a directory"},
		{[]string{"cert", "init", "--force", "--dir", filepath.Join(file, "sub")}, "cert init: mkdir " + file + ": not a directory"},
		{[]string{"cert", "frobnicate"}, `cert: unknown command "frobnicate" (want init or issue; see condis cert --help)`},
	} {
		wantErr(t, tc.want, tc.args...)
	}
	// Nothing was written by the failures.
	for _, d := range []string{noCA, onlyKey} {
		if m, _ := filepath.Glob(filepath.Join(d, "alpha*")); len(m) != 0 {
			t.Errorf("files written: %v", m)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("cert issue made the directory")
	}
}

func TestCertHelp(t *testing.T) {
	out := mustRun(t, "cert")
	for _, s := range []string{"init", "issue", "ca.pem, ca.key"} {
		if !strings.Contains(out, s) {
			t.Errorf("condis cert lacks %q:\n%s", s, out)
		}
	}
	out = mustRun(t, "cert", "issue", "--help")
	if !strings.Contains(out, "--force") || !strings.Contains(out, "condis cert issue --dir cluster alpha") {
		t.Errorf("condis cert issue --help:\n%s", out)
	}
}
