package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// CertInfo describes one certificate file (the first certificate in it).
type CertInfo struct {
	Name     string // file name without .crt
	Subject  string
	IsCA     bool
	NotAfter time.Time
	cert     *x509.Certificate
}

// Inspect lists the certificates in dir, by name.
func Inspect(dir string) ([]CertInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	var out []CertInfo
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		c, err := parseCert(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, CertInfo{Name: strings.TrimSuffix(filepath.Base(f), ".crt"), Subject: c.Subject.CommonName,
			IsCA: c.IsCA, NotAfter: c.NotAfter, cert: c})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// ExpiryWarning is how far ahead an expiry is worth a warning in the log.
const ExpiryWarning = 30 * 24 * time.Hour

// ExpiringSoon names the certificates in infos that expire within ExpiryWarning of now and
// that renewal has not taken care of: CAs, and leaves past their renewal point.
func ExpiringSoon(infos []CertInfo, now time.Time) []string {
	var out []string
	for _, i := range infos {
		if i.NotAfter.Sub(now) < ExpiryWarning && (i.IsCA || RenewalDue(i.cert, now)) {
			out = append(out, fmt.Sprintf("%s (expires %s)", i.Name, i.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// ErrNoCAKeys means dir holds certificates whose CA keys are elsewhere (an agent's).
var ErrNoCAKeys = errors.New("no CA keys here")

// RotateLeaves re-issues, with new keys, every leaf certificate in dir whose CA key is in dir
// too, keeping its subject, names and usages. CAs stay. It returns the names it rotated.
func RotateLeaves(dir string, lifetime time.Duration) ([]string, error) {
	infos, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	var cas []*CA
	for _, i := range infos {
		if !i.IsCA {
			continue
		}
		ca, err := loadCA(filepath.Join(dir, i.Name+".crt"), filepath.Join(dir, i.Name+".key"))
		if err != nil {
			continue // a CA certificate without its key (an agent's copy, or a bundle)
		}
		ca.LeafLifetime = lifetime
		cas = append(cas, ca)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoCAKeys)
	}
	var done []string
	for _, i := range infos {
		if i.IsCA {
			continue
		}
		keyPath := filepath.Join(dir, i.Name+".key")
		if _, err := os.Stat(keyPath); err != nil {
			continue
		}
		idx := slices.IndexFunc(cas, func(ca *CA) bool { return i.cert.CheckSignatureFrom(ca.Cert) == nil })
		if idx < 0 {
			continue
		}
		if err := cas[idx].issue(filepath.Join(dir, i.Name+".crt"), keyPath, i.Name, specOf(i.cert)); err != nil {
			return done, err
		}
		done = append(done, i.Name)
	}
	return done, nil
}

func specOf(c *x509.Certificate) Spec {
	s := Spec{CommonName: c.Subject.CommonName, Organization: c.Subject.Organization, DNSNames: c.DNSNames,
		IPs: append([]net.IP(nil), c.IPAddresses...)}
	s.Server = slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	s.Client = slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	return s
}

// PEMCerts splits raw into its PEM certificates; anything else in it is an error.
func PEMCerts(raw []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := raw
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("data that is not PEM")
	}
	return out, nil
}
