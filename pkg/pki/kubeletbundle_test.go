package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func bundleCerts(t *testing.T, b *Bundle) []*x509.Certificate {
	t.Helper()
	certs, err := PEMCerts(readCert(t, b.Path(KubeletCABundle, ".crt")))
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// A new cluster never trusts the server CA for kubelets, on any later start either.
func TestKubeletCABundleNewCluster(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		b, err := EnsureCluster(spec(dir))
		if err != nil {
			t.Fatal(err)
		}
		if certs := bundleCerts(t, b); len(certs) != 1 || !certs[0].Equal(b.KubeletCA.Cert) {
			t.Errorf("bundle of %d certificates, want the kubelet CA alone", len(certs))
		}
	}
}

// A cluster whose server CA predates this start (one from before the kubelet CA, a server
// joining it) keeps the server CA in the bundle until TrustKubeletCAOnly, and then never again.
func TestKubeletCABundleKeepsServerCAUntilDropped(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir, ServerCA, "outpost-server-ca"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		b, err := EnsureCluster(spec(dir))
		if err != nil {
			t.Fatal(err)
		}
		if certs := bundleCerts(t, b); len(certs) != 2 || !certs[0].Equal(b.KubeletCA.Cert) || !certs[1].Equal(b.ServerCA.Cert) {
			t.Errorf("bundle of %d certificates, want the kubelet CA and the server CA", len(certs))
		}
	}
	if only, err := KubeletCAOnlyRecorded(dir); err != nil || only {
		t.Errorf("recorded %v %v", only, err)
	}
	if err := TrustKubeletCAOnly(dir); err != nil {
		t.Fatal(err)
	}
	if only, err := KubeletCAOnlyRecorded(dir); err != nil || !only {
		t.Errorf("not recorded: %v", err)
	}
	for range 2 { // the drop, then the next start (or certificate check): the server CA stays out
		b, err := EnsureCluster(spec(dir))
		if err != nil {
			t.Fatal(err)
		}
		if certs := bundleCerts(t, b); len(certs) != 1 || !certs[0].Equal(b.KubeletCA.Cert) {
			t.Errorf("bundle of %d certificates after the drop", len(certs))
		}
	}
	if err := TrustKubeletCAOnly(t.TempDir()); err == nil {
		t.Error("dropped the server CA in a dir without a kubelet CA")
	}
	// Another cluster's CAs (a restore of its snapshot, a re-join): the record is not theirs.
	other := t.TempDir()
	if _, err := EnsureCluster(spec(other)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ServerCA + ".crt", ServerCA + ".key", KubeletServingCA + ".crt", KubeletServingCA + ".key"} {
		if err := os.WriteFile(filepath.Join(dir, f), readCert(t, filepath.Join(other, f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if certs := bundleCerts(t, b); len(certs) != 2 || !certs[1].Equal(b.ServerCA.Cert) {
		t.Errorf("bundle of %d certificates with another cluster's CAs", len(certs))
	}
}
