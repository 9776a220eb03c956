// Package pki makes and loads the certificates that authenticate condis nodes
// to each other: one cluster certificate authority (CA) and, signed by it, one
// certificate per node whose name is the node's identity.
//
// Keys are ECDSA P-256, stored as PKCS #8 PEM ("PRIVATE KEY") files with mode
// 0600; certificates are PEM ("CERTIFICATE") files with mode 0644. The CA is
// valid for ten years; a node certificate for ten years as well, but never
// beyond its CA. Both start one hour in the past to tolerate clock skew.
//
// A node certificate carries the node name twice: as its subject CommonName
// and as its only DNS subjectAltName. The DNS SAN is the identity that counts
// ([NodeName] reads it; TLS hostname verification checks it); the CommonName
// is there for people reading the certificate. Node certificates are valid for
// both TLS server and client authentication, since every node both dials and
// accepts.
//
// On disk a cluster directory holds:
//
//	ca.pem, ca.key        the CA ([InitCA]; keep ca.key off the nodes)
//	NAME.pem, NAME.key    node NAME's certificate and key ([Issue])
//
// A node needs ca.pem, NAME.pem and NAME.key ([LoadNode]). Nothing is ever
// overwritten: writing a file that exists is an error that names the file.
//
// This is the library half of `condis cert init --dir DIR` and
// `condis cert issue --dir DIR NAME`.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names inside a cluster directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca.key"
)

// Validity periods.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 10 * 365 * 24 * time.Hour
	backdate     = time.Hour
)

// MaxNameLen is the longest node name (the longest DNS name).
const MaxNameLen = 253

// CA is a cluster certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Identity is what a node needs for mutually authenticated TLS: its name, its
// certificate chain with private key, and the pool of the cluster CA that
// every peer's certificate must chain to.
type Identity struct {
	Name        string          // the node name: the certificate's DNS SAN
	Certificate tls.Certificate // leaf (Leaf set) + key
	CAs         *x509.CertPool  // the cluster CA
}

// NewCA makes a CA in memory (for tests and `condis demo`'s throwaway
// certificates); [InitCA] makes one on disk.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "condis cluster CA " + hex.EncodeToString(skid[:4])},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Pool returns a pool holding only the CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue makes a key and a certificate for node name, signed by the CA, in
// memory. The name must satisfy [ValidName].
func (ca *CA) Issue(name string) (*Identity, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating key for %q: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(NodeValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SubjectKeyId: skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing certificate for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing certificate for %q: %w", name, err)
	}
	return &Identity{
		Name:        name,
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		CAs:         ca.Pool(),
	}, nil
}

// ValidName reports whether name can be a node name: a DNS name of at most
// [MaxNameLen] octets made of dot-separated labels of 1-63 lower-case
// letters, digits and hyphens, no label starting or ending with a hyphen.
// Lower case only, so that a node has exactly one spelling.
func ValidName(name string) error {
	if name == "" {
		return errors.New("pki: empty node name")
	}
	if name+".pem" == CACertFile {
		return fmt.Errorf("pki: %q cannot be a node name: %s and %s are the CA's files", name, CACertFile, CAKeyFile)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("pki: node name %.20q... is longer than %d octets", name, MaxNameLen)
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			label++
		case c == '-':
			if label == 0 || i+1 == len(name) || name[i+1] == '.' {
				return fmt.Errorf("pki: node name %q: a label starts or ends with '-'", name)
			}
			label++
		case c == '.':
			if label == 0 || i+1 == len(name) {
				return fmt.Errorf("pki: node name %q: empty label", name)
			}
			label = 0
			continue
		default:
			return fmt.Errorf("pki: node name %q: character %q is not a lower-case letter, digit, '-' or '.'", name, c)
		}
		if label > 63 {
			return fmt.Errorf("pki: node name %q: a label is longer than 63 octets", name)
		}
	}
	return nil
}

// NodeName returns the node name a certificate asserts: its only DNS
// subjectAltName, which must be a [ValidName]. A certificate with no DNS SAN
// or more than one names no node. NodeName does not verify the certificate;
// TLS does that against the cluster CA before anyone asks for the name.
func NodeName(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("pki: no certificate")
	}
	if len(cert.DNSNames) != 1 {
		return "", fmt.Errorf("pki: certificate %q has %d DNS names, want exactly 1 (the node name)", cert.Subject.CommonName, len(cert.DNSNames))
	}
	name := cert.DNSNames[0]
	if err := ValidName(name); err != nil {
		return "", err
	}
	return name, nil
}

// InitCA makes a new CA and writes it to dir as ca.pem and ca.key (the key
// with mode 0600), creating dir (0700) if needed. It refuses to overwrite an
// existing file.
func InitCA(dir string) (*CA, error) { return initCA(dir, false) }

// ReplaceCA is InitCA that replaces an existing CA atomically: a failure
// leaves the old files as they were. Every node certificate must then be
// issued again.
func ReplaceCA(dir string) (*CA, error) { return initCA(dir, true) }

func initCA(dir string, replace bool) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if !replace {
		if err := noFile(certPath, keyPath); err != nil {
			return nil, err
		}
	}
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(certPath, keyPath, ca.Cert.Raw, ca.Key, replace); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads ca.pem and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s: not a CA certificate", certPath)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("pki: %s does not hold the key of %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue makes a certificate for node name signed by the CA in dir and writes
// it as NAME.pem and NAME.key (the key with mode 0600). It refuses to
// overwrite an existing file.
func Issue(dir, name string) (*Identity, error) { return issue(dir, name, false) }

// Reissue is Issue that replaces an existing certificate and key atomically.
func Reissue(dir, name string) (*Identity, error) { return issue(dir, name, true) }

func issue(dir, name string, replace bool) (*Identity, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if !replace {
		if err := noFile(certPath, keyPath); err != nil {
			return nil, err
		}
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	id, err := ca.Issue(name)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(certPath, keyPath, id.Certificate.Certificate[0], id.Certificate.PrivateKey.(crypto.Signer), replace); err != nil {
		return nil, err
	}
	return id, nil
}

// LoadNode reads node name's identity from a cluster directory: NAME.pem,
// NAME.key and ca.pem. It is LoadFiles with those three paths, plus a check
// that the certificate names the node asked for.
func LoadNode(dir, name string) (*Identity, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, name+".pem")
	id, err := LoadFiles(certPath, filepath.Join(dir, name+".key"), filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	if id.Name != name {
		return nil, fmt.Errorf("pki: %s names node %q, not %q", certPath, id.Name, name)
	}
	return id, nil
}

// LoadFiles reads a node identity from explicit paths: the node certificate,
// its key and the CA certificate. It checks that the key matches the
// certificate, that the certificate chains to the CA and is valid now for
// client and server authentication, and that it names a node ([NodeName]).
func LoadFiles(certFile, keyFile, caFile string) (*Identity, error) {
	caCert, err := readCert(caFile)
	if err != nil {
		return nil, err
	}
	if !caCert.IsCA {
		return nil, fmt.Errorf("pki: %s: not a CA certificate", caFile)
	}
	leaf, err := readCert(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("pki: %s does not hold the key of %s", keyFile, certFile)
	}
	name, err := NodeName(leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("pki: %s does not verify against %s: %w", certFile, caFile, err)
	}
	return &Identity{
		Name:        name,
		Certificate: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
		CAs:         pool,
	}, nil
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never zero
}

// subjectKeyID is the leftmost 160 bits of the SHA-256 of the encoded public
// key (close to RFC 7093 method 1, which hashes the subjectPublicKey BIT
// STRING only; any stable unique value will do).
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// noFile fails, naming the file, if any of paths exists.
func noFile(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("pki: %s already exists; not overwriting it", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

// writeKeyPair writes a certificate (PEM, 0644) and its key (PKCS #8 PEM,
// 0600). Without replace, neither file may exist. With replace, both are
// written to temporary files next to them and renamed into place, so a
// failure leaves any old pair as it was.
func writeKeyPair(certPath, keyPath string, certDER []byte, key crypto.Signer, replace bool) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encoding %s: %w", keyPath, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	if !replace {
		if err := writeNew(keyPath, 0o600, keyPEM); err != nil {
			return err
		}
		if err := writeNew(certPath, 0o644, certPEM); err != nil {
			os.Remove(keyPath)
			return err
		}
		return nil
	}
	keyTmp, err := writeTemp(keyPath, 0o600, keyPEM)
	if err != nil {
		return err
	}
	certTmp, err := writeTemp(certPath, 0o644, certPEM)
	if err != nil {
		os.Remove(keyTmp)
		return err
	}
	if err := os.Rename(keyTmp, keyPath); err != nil {
		os.Remove(keyTmp)
		os.Remove(certTmp)
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(certTmp, certPath); err != nil {
		os.Remove(certTmp)
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// writeTemp writes data with mode perm to a new temporary file next to path
// and returns its name.
func writeTemp(path string, perm os.FileMode, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return name, nil
}

// writeNew creates path (which must not exist) with mode perm and data.
func writeNew(path string, perm os.FileMode, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	// The umask may have taken bits away; it must not have added any, but
	// make the mode exact either way.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}

func readPEM(path, wantType string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: %s: no PEM data", path)
	}
	if block.Type != wantType {
		return nil, fmt.Errorf("pki: %s: PEM block is %q, want %q", path, block.Type, wantType)
	}
	return block.Bytes, nil
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (crypto.Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: key of type %T cannot sign", path, k)
	}
	return s, nil
}
