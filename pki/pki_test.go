package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestInitCAWritesFilesAndRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	ca, err := InitCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(t, filepath.Join(dir, CAKeyFile)); got != 0o600 {
		t.Errorf("ca.key mode %o, want 600", got)
	}
	if got := mode(t, filepath.Join(dir, CACertFile)); got != 0o644 {
		t.Errorf("ca.pem mode %o, want 644", got)
	}
	if !ca.Cert.IsCA || !ca.Cert.BasicConstraintsValid || !ca.Cert.MaxPathLenZero {
		t.Errorf("CA certificate constraints: IsCA %v, BasicConstraintsValid %v, MaxPathLenZero %v",
			ca.Cert.IsCA, ca.Cert.BasicConstraintsValid, ca.Cert.MaxPathLenZero)
	}
	if life := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); life < CAValidity || life > CAValidity+2*time.Hour {
		t.Errorf("CA validity %v, want ten years", life)
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("LoadCA returned another certificate")
	}
	_, err = InitCA(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CACertFile)) {
		t.Errorf("second InitCA: %v, want an error naming ca.pem", err)
	}
}

func TestIssueAndLoadNode(t *testing.T) {
	dir := t.TempDir()
	ca, err := InitCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Issue(dir, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(t, filepath.Join(dir, "alpha.key")); got != 0o600 {
		t.Errorf("alpha.key mode %o, want 600", got)
	}
	leaf := id.Certificate.Leaf
	if leaf.Subject.CommonName != "alpha" || !slices.Equal(leaf.DNSNames, []string{"alpha"}) {
		t.Errorf("CN %q, DNS names %q; want alpha and [alpha]", leaf.Subject.CommonName, leaf.DNSNames)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("extended key usages %v, want client and server auth", leaf.ExtKeyUsage)
	}
	if leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("node certificate outlives its CA: %v > %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}

	loaded, err := LoadNode(dir, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Name != "alpha" || !loaded.Certificate.Leaf.Equal(leaf) {
		t.Errorf("LoadNode: name %q, same leaf %v", loaded.Name, loaded.Certificate.Leaf.Equal(leaf))
	}
	if _, err := Issue(dir, "alpha"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "alpha.pem")) {
		t.Errorf("second Issue: %v, want an error naming alpha.pem", err)
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Issue(dir, "alpha"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CACertFile)) {
		t.Errorf("Issue without a CA: %v, want an error naming ca.pem", err)
	}
	if _, err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(dir, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(dir, "beta"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNode(dir, "gamma"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "gamma.pem")) {
		t.Errorf("LoadNode of a missing node: %v, want an error naming gamma.pem", err)
	}

	// Garbage in the key file.
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFiles(filepath.Join(dir, "alpha.pem"), bad, filepath.Join(dir, CACertFile)); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("garbage key: %v, want an error naming %s", err, bad)
	}
	// Another node's key.
	betaKey := filepath.Join(dir, "beta.key")
	if _, err := LoadFiles(filepath.Join(dir, "alpha.pem"), betaKey, filepath.Join(dir, CACertFile)); err == nil || !strings.Contains(err.Error(), betaKey) {
		t.Errorf("mismatched key: %v, want an error naming %s", err, betaKey)
	}
	// A certificate as the CA that is not a CA.
	alphaPem := filepath.Join(dir, "alpha.pem")
	if _, err := LoadFiles(alphaPem, filepath.Join(dir, "alpha.key"), alphaPem); err == nil || !strings.Contains(err.Error(), alphaPem) {
		t.Errorf("node certificate as CA: %v, want an error naming %s", err, alphaPem)
	}
	// A certificate from another CA.
	other := t.TempDir()
	if _, err := InitCA(other); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFiles(alphaPem, filepath.Join(dir, "alpha.key"), filepath.Join(other, CACertFile)); err == nil || !strings.Contains(err.Error(), alphaPem) {
		t.Errorf("foreign CA: %v, want an error naming %s", err, alphaPem)
	}
	// A key file holding a certificate.
	if _, err := LoadFiles(alphaPem, alphaPem, filepath.Join(dir, CACertFile)); err == nil || !strings.Contains(err.Error(), alphaPem) {
		t.Errorf("certificate as key: %v, want an error naming %s", err, alphaPem)
	}
	// NAME.pem that names another node.
	data, err := os.ReadFile(filepath.Join(dir, "beta.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(betaKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "delta.pem"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "delta.key"), key, 0o600)
	if _, err := LoadNode(dir, "delta"); err == nil || !strings.Contains(err.Error(), "delta.pem") {
		t.Errorf("certificate of beta as delta: %v, want an error naming delta.pem", err)
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "alpha", "node-1", "n1.example", "x" + strings.Repeat("y", 62)} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "Alpha", "-a", "a-", "a..b", ".a", "a.", "a/b", "a b", "a_b", "é",
		strings.Repeat("y", 64), strings.Repeat("abcdefgh.", 30)} {
		if err := ValidName(name); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
		}
	}
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("Bad/Name"); err == nil {
		t.Error("Issue accepted an invalid name")
	}
}

func TestNodeNameNeedsExactlyOneDNSName(t *testing.T) {
	for _, c := range []struct {
		dns  []string
		want string
	}{
		{[]string{"alpha"}, "alpha"},
		{nil, ""},
		{[]string{"alpha", "beta"}, ""},
		{[]string{"ALPHA"}, ""},
	} {
		got, err := NodeName(&x509.Certificate{DNSNames: c.dns})
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("NodeName(%q) = %q, %v; want %q", c.dns, got, err, c.want)
		}
	}
}

// handshake runs mutual TLS 1.3 between two identities over a pipe, the
// way the transport configures it, and returns the peer names each side saw.
func handshake(t *testing.T, client, server *Identity) (seenByServer string, clientErr, serverErr error) {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	cc := tls.Client(c, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{client.Certificate},
		RootCAs:      client.CAs,
		ServerName:   server.Name,
	})
	sc := tls.Server(s, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{server.Certificate},
		ClientCAs:    server.CAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	done := make(chan error, 1)
	go func() {
		err := sc.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a rejected certificate only
			// when it reads; make it read.
			_, err = sc.Write([]byte{1})
		}
		if err != nil {
			s.Close()
		}
		done <- err
	}()
	clientErr = cc.Handshake()
	if clientErr == nil {
		_, clientErr = cc.Read(make([]byte, 1))
	}
	c.Close()
	serverErr = <-done
	if serverErr == nil {
		seenByServer, _ = NodeName(sc.ConnectionState().PeerCertificates[0])
	}
	return seenByServer, clientErr, serverErr
}

func TestIdentitiesAuthenticateEachOther(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	alpha, _ := ca.Issue("alpha")
	beta, _ := ca.Issue("beta")
	mallory, _ := other.Issue("alpha")

	if seen, cerr, serr := handshake(t, alpha, beta); cerr != nil || serr != nil || seen != "alpha" {
		t.Errorf("alpha -> beta: client %v, server %v, server saw %q", cerr, serr, seen)
	}
	if _, _, serr := handshake(t, mallory, beta); serr == nil {
		t.Error("beta accepted a client certificate from another CA")
	}
	if _, cerr, _ := handshake(t, alpha, &Identity{Name: "beta", Certificate: mallory.Certificate, CAs: other.Pool()}); cerr == nil {
		t.Error("alpha accepted a server certificate from another CA")
	}
}

// "ca" would make NAME.pem and NAME.key the CA's own files.
func TestCAIsNotANodeName(t *testing.T) {
	if err := ValidName("ca"); err == nil || !strings.Contains(err.Error(), "cannot be a node name") {
		t.Fatalf("ValidName(\"ca\") = %v", err)
	}
	if err := ValidName("cab"); err != nil {
		t.Fatalf("ValidName(\"cab\") = %v", err)
	}
}
