// Package pki creates the cluster's certificate authorities, certificates and kubeconfigs on
// first start and reuses them afterwards. Keys are ECDSA P-256, written 0600, atomically.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafLifetime is how long a leaf certificate is valid unless the cluster says
	// otherwise (a test shortens it to minutes to see renewal happen).
	DefaultLeafLifetime = 365 * 24 * time.Hour
)

// CA is a certificate authority with its key.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	// LeafLifetime of the certificates it signs; 0 means DefaultLeafLifetime.
	LeafLifetime time.Duration
}

func (ca *CA) leafLifetime() time.Duration {
	if ca.LeafLifetime > 0 {
		return ca.LeafLifetime
	}
	return DefaultLeafLifetime
}

// RenewalDue reports whether cert has less than a quarter of its lifetime left at now: about
// 90 days for a one-year certificate. Renewing that early leaves months to notice a failure.
func RenewalDue(cert *x509.Certificate, now time.Time) bool {
	total := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Sub(now) < total/4
}

// CheckInterval is how often certificates of this lifetime are looked at: often enough that
// one is renewed well inside its last quarter, at most hourly.
func CheckInterval(lifetime time.Duration) time.Duration {
	return min(time.Hour, max(5*time.Second, lifetime/20))
}

// backdate covers clock skew between machines; short test lifetimes backdate less.
func backdate(lifetime time.Duration) time.Duration { return min(time.Hour, lifetime/10) }

// Spec describes one leaf certificate.
type Spec struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Server       bool // serving cert (else client)
	Client       bool
}

// LoadOrCreateCA reads dir/name.crt and .key, or creates them.
func LoadOrCreateCA(dir, name, cn string) (*CA, error) {
	crtPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if ca, err := loadCA(crtPath, keyPath); err == nil {
		return ca, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load CA %s: %w (remove both files to recreate it; every certificate signed by it is then invalid)", crtPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s@%d", cn, now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA %s: %w", name, err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := WriteFile(crtPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

func loadCA(crtPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, err
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// Issue writes dir/name.crt and .key signed by ca, unless a valid one that already matches
// the spec is there and is not due for renewal. It reports whether it wrote a new one.
func (ca *CA) Issue(dir, name string, s Spec) (bool, error) {
	crtPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if ca.current(crtPath, keyPath, s) {
		return false, nil
	}
	return true, ca.issue(crtPath, keyPath, name, s)
}

func (ca *CA) issue(crtPath, keyPath, name string, s Spec) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key %s: %w", name, err)
	}
	der, err := ca.sign(key.Public(), s)
	if err != nil {
		return fmt.Errorf("sign %s: %w", name, err)
	}
	// A reader between the two writes sees a mismatched pair, fails its load and retries; a
	// crash between them leaves a pair that current() refuses, so it is re-issued.
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// SignPEM signs a certificate for a key made elsewhere (an agent's), returning PEM.
func (ca *CA) SignPEM(pub crypto.PublicKey, s Spec) ([]byte, error) {
	der, err := ca.sign(pub, s)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func (ca *CA) sign(pub crypto.PublicKey, s Spec) ([]byte, error) {
	now, life := time.Now(), ca.leafLifetime()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CommonName, Organization: s.Organization},
		DNSNames:     s.DNSNames,
		IPAddresses:  s.IPs,
		NotBefore:    now.Add(-backdate(life)),
		NotAfter:     now.Add(life),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if s.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.Client || !s.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
}

// current reports whether an existing certificate is signed by ca, not near expiry, and
// carries exactly the spec's identity and names.
func (ca *CA) current(crtPath, keyPath string, s Spec) bool {
	raw, err := os.ReadFile(crtPath)
	if err != nil {
		return false
	}
	cert, err := parseCert(raw)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || RenewalDue(cert, time.Now()) ||
		cert.NotAfter.Sub(cert.NotBefore) > ca.leafLifetime()+backdate(ca.leafLifetime()) {
		return false
	}
	// The key must be this certificate's: a crash between writing the two leaves a pair that
	// no one could load, and it is re-issued here rather than when it falls due.
	if key, err := loadKey(keyPath); err != nil || !publicKeyMatches(cert, key) {
		return false
	}
	if cert.Subject.CommonName != s.CommonName || !slices.Equal(cert.Subject.Organization, s.Organization) ||
		!slices.Equal(cert.DNSNames, s.DNSNames) || len(cert.IPAddresses) != len(s.IPs) {
		return false
	}
	for i, ip := range cert.IPAddresses {
		if !ip.Equal(s.IPs[i]) {
			return false
		}
	}
	return true
}

// publicKeyMatches reports whether key is the private half of cert's public key.
func publicKeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// ServiceAccountKey creates (once) the key that signs service-account tokens.
func ServiceAccountKey(path string) error {
	if _, err := loadKey(path); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	return writeKey(path, key)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// ParseCert reads the first PEM certificate in raw.
func ParseCert(raw []byte) (*x509.Certificate, error) { return parseCert(raw) }

func parseCert(raw []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func loadKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteFile writes atomically: a temp file in the same folder, then rename, so a power cut
// leaves the old file or the new one, never half of one.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return os.Chmod(path, mode)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
