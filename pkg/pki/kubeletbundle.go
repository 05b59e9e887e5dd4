package pki

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KubeletCAOnly, a file in the TLS dir, records that no node serves a certificate from the
// server CA: KubeletCABundle then leaves the server CA out, for good. It holds the SHA-256 of
// that server CA, so a dir given another cluster's CAs (a restore, a re-join) trusts it again
// until checked.
const KubeletCAOnly = "kubelet-ca-only"

// KubeletCAOnlyRecorded reports whether dir records KubeletCAOnly for its server CA.
func KubeletCAOnlyRecorded(dir string) (bool, error) {
	serverCA, err := os.ReadFile(filepath.Join(dir, ServerCA+".crt"))
	if err != nil {
		return false, fmt.Errorf("kubelet CA bundle: %w", err)
	}
	return kubeletCAOnly(dir, serverCA)
}

// TrustKubeletCAOnly records KubeletCAOnly and rewrites the bundle with the kubelet CA alone;
// the caller has made sure every Node's serving certificate is from it. The apiserver and
// metrics-server read the bundle through client-go, which re-reads a changed CA file (every
// few minutes, ClientsAllowCARotation); at the latest the change applies at their next start.
func TrustKubeletCAOnly(dir string) error {
	var pems [2][]byte
	for i, name := range []string{KubeletServingCA, ServerCA} {
		raw, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			return fmt.Errorf("kubelet CA bundle: %w", err)
		}
		if _, err := PEMCerts(raw); err != nil {
			return fmt.Errorf("kubelet CA bundle: %s.crt: %w", name, err)
		}
		pems[i] = raw
	}
	if err := recordKubeletCAOnly(dir, pems[1]); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, KubeletCABundle+".crt"), pems[0], 0o644)
}

func recordKubeletCAOnly(dir string, serverCA []byte) error {
	sum, err := fingerprint(serverCA)
	if err != nil {
		return fmt.Errorf("kubelet CA bundle: %w", err)
	}
	return WriteFile(filepath.Join(dir, KubeletCAOnly), []byte(sum+"\n"), 0o644)
}

func kubeletCAOnly(dir string, serverCA []byte) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, KubeletCAOnly))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kubelet CA bundle: %w", err)
	}
	sum, err := fingerprint(serverCA)
	if err != nil {
		return false, fmt.Errorf("kubelet CA bundle: %w", err)
	}
	return strings.TrimSpace(string(b)) == sum, nil
}

// fingerprint is the SHA-256 of a PEM certificate's DER, hex.
func fingerprint(certPEM []byte) (string, error) {
	c, err := parseCert(certPEM)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:]), nil
}

// writeKubeletCABundle writes what kubelets' serving certificates are verified with: the
// kubelet CA and, unless KubeletCAOnly is recorded, the server CA, which signed them before
// the kubelet CA existed.
func writeKubeletCABundle(dir string, kubeletCA, serverCA *CA) error {
	write := func() (bool, error) {
		only, err := kubeletCAOnly(dir, serverCA.CertPEM)
		if err != nil {
			return false, err
		}
		certs := kubeletCA.CertPEM
		if !only {
			certs = bytes.Join([][]byte{kubeletCA.CertPEM, serverCA.CertPEM}, nil)
		}
		return only, WriteFile(filepath.Join(dir, KubeletCABundle+".crt"), certs, 0o644)
	}
	only, err := write()
	if err != nil || only {
		return err
	}
	// TrustKubeletCAOnly may have run since the check (the server's certificate renewal runs
	// beside it): if so, write again, so that its bundle is the one that stays.
	if only, err = kubeletCAOnly(dir, serverCA.CertPEM); err != nil || !only {
		return err
	}
	_, err = write()
	return err
}
