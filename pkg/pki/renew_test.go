package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Kubelet serving certificates come from a CA of their own, which the apiserver trusts and
// nothing else does; a new cluster's bundle has no server CA in it (kubeletbundle_test.go).
func TestKubeletServingCAIsSeparate(t *testing.T) {
	dir := t.TempDir()
	b, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parseCert(readCert(t, b.Path(KubeletServing, ".crt")))
	if c.CheckSignatureFrom(b.KubeletCA.Cert) != nil || c.CheckSignatureFrom(b.ServerCA.Cert) == nil {
		t.Error("kubelet serving certificate not from the kubelet CA alone")
	}
	certs, err := PEMCerts(readCert(t, b.Path(KubeletCABundle, ".crt")))
	if err != nil || len(certs) != 1 || !certs[0].Equal(b.KubeletCA.Cert) {
		t.Errorf("bundle %d certs, %v", len(certs), err)
	}
	if bytes.Equal(b.KubeletCA.CertPEM, b.ServerCA.CertPEM) {
		t.Error("kubelet CA is the server CA")
	}
}

func TestShortLifetimeRenewal(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCluster(spec(dir)); err != nil {
		t.Fatal(err)
	}
	// A shorter lifetime re-issues the year-long leaves; CAs stay.
	s := spec(dir)
	s.LeafLifetime = 4 * time.Minute
	ca := readCert(t, filepath.Join(dir, ServerCA+".crt"))
	b, err := EnsureCluster(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Renewed) != 16 || !slices.Contains(b.Renewed, APIServerServing) {
		t.Errorf("renewed %v", b.Renewed)
	}
	if !bytes.Equal(ca, readCert(t, filepath.Join(dir, ServerCA+".crt"))) {
		t.Error("CA changed")
	}
	c, _ := parseCert(readCert(t, b.Path(APIServerServing, ".crt")))
	if life := time.Until(c.NotAfter); life > 4*time.Minute || life < 3*time.Minute {
		t.Errorf("lifetime left %s", life)
	}
	if RenewalDue(c, time.Now()) || !RenewalDue(c, time.Now().Add(3*time.Minute+30*time.Second)) {
		t.Error("renewal due at the wrong time")
	}
	if b2, _ := EnsureCluster(s); len(b2.Renewed) != 0 {
		t.Errorf("fresh certificates renewed again: %v", b2.Renewed)
	}
	if got := CheckInterval(4 * time.Minute); got != 12*time.Second {
		t.Errorf("interval %s", got)
	}
	if got := CheckInterval(DefaultLeafLifetime); got != time.Hour {
		t.Errorf("interval %s", got)
	}
	// Nothing is due yet, so nothing warrants a warning; a CA within 30 days does.
	infos, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if soon := ExpiringSoon(infos, time.Now()); len(soon) != 0 {
		t.Errorf("warned of %v", soon)
	}
	if soon := ExpiringSoon(infos, time.Now().Add(caValidity-10*24*time.Hour)); !slices.ContainsFunc(soon, func(s string) bool { return strings.HasPrefix(s, ServerCA+" ") }) {
		t.Errorf("no warning for the CA: %v", soon)
	}
}

func TestRotateLeaves(t *testing.T) {
	dir := t.TempDir()
	b, err := EnsureCluster(spec(dir, "edge.example"))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, n := range []string{APIServerServing, Admin, ServerCA, KubeletServing} {
		before[n] = readCert(t, b.Path(n, ".crt"))
	}
	key := readCert(t, b.Path(Admin, ".key"))
	done, err := RotateLeaves(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 16 || slices.Contains(done, ServerCA) {
		t.Errorf("rotated %v", done)
	}
	if !bytes.Equal(before[ServerCA], readCert(t, b.Path(ServerCA, ".crt"))) {
		t.Error("CA rotated")
	}
	if bytes.Equal(key, readCert(t, b.Path(Admin, ".key"))) {
		t.Error("admin key kept")
	}
	for _, n := range []string{APIServerServing, Admin, KubeletServing} {
		old, _ := parseCert(before[n])
		cur, _ := parseCert(readCert(t, b.Path(n, ".crt")))
		if old.Equal(cur) || cur.Subject.String() != old.Subject.String() || !slices.Equal(cur.DNSNames, old.DNSNames) ||
			!slices.Equal(cur.ExtKeyUsage, old.ExtKeyUsage) || cur.Issuer.String() != old.Issuer.String() {
			t.Errorf("%s: rotated certificate differs in identity or was not rotated", n)
		}
	}
	// The next start keeps the rotated certificates: they match the spec.
	if b2, _ := EnsureCluster(spec(dir, "edge.example")); len(b2.Renewed) != 0 {
		t.Errorf("rotated certificates replaced at start: %v", b2.Renewed)
	}
	agent := t.TempDir()
	os.WriteFile(filepath.Join(agent, ServerCA+".crt"), before[ServerCA], 0o644)
	if _, err := RotateLeaves(agent, 0); err == nil {
		t.Error("rotated without CA keys")
	}
}

func TestKubeconfigFilesNamesFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.kubeconfig")
	if err := KubeconfigFiles(p, "https://127.0.0.1:6443", "/tls/server-ca.crt", "/tls", Kubelet); err != nil {
		t.Fatal(err)
	}
	b := string(readCert(t, p))
	for _, want := range []string{"certificate-authority: /tls/server-ca.crt", "client-certificate: /tls/client-kubelet.crt", "client-key: /tls/client-kubelet.key"} {
		if !strings.Contains(b, want) {
			t.Errorf("missing %q in\n%s", want, b)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestPEMCertsRefusesExtra(t *testing.T) {
	dir := t.TempDir()
	b, _ := EnsureCluster(spec(dir))
	if _, err := PEMCerts(append(append([]byte{}, b.ServerCA.CertPEM...), []byte("junk")...)); err == nil {
		t.Error("trailing junk accepted")
	}
	if _, err := PEMCerts([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")); err == nil {
		t.Error("key accepted as certificate")
	}
}

// A key that is not the certificate's (a crash between the two writes) is re-issued at once.
func TestMismatchedPairReissued(t *testing.T) {
	dir := t.TempDir()
	b, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	other := readCert(t, b.Path(Admin, ".key"))
	if err := os.WriteFile(b.Path(APIServerServing, ".key"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	b2, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Renewed) != 1 || b2.Renewed[0] != APIServerServing {
		t.Errorf("renewed %v, want only the mismatched pair", b2.Renewed)
	}
}
