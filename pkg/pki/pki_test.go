package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func spec(dir string, sans ...string) ClusterSpec {
	return ClusterSpec{Dir: dir, DNSNames: append([]string{"kubernetes"}, sans...),
		IPs: []net.IP{net.ParseIP("127.0.0.1").To4()}, NodeName: "n1", NodeIP: net.ParseIP("192.0.2.1").To4()}
}

func TestEnsureClusterModesAndReuse(t *testing.T) {
	dir := t.TempDir()
	b, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	keys := 0
	for _, e := range entries {
		info, _ := e.Info()
		if strings.HasSuffix(e.Name(), ".key") {
			keys++
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %o, want 0600", e.Name(), info.Mode().Perm())
			}
		}
	}
	if keys != 21 {
		t.Errorf("got %d keys, want 21", keys)
	}
	// The admin cert must chain to the client CA and be a cluster admin.
	raw, _ := os.ReadFile(b.Path(Admin, ".crt"))
	cert, err := parseCert(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(b.ClientCA.Cert); err != nil {
		t.Errorf("admin not signed by client CA: %v", err)
	}
	if cert.Subject.Organization[0] != "system:masters" || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("admin subject %v usage %v", cert.Subject, cert.ExtKeyUsage)
	}
	// The scheduler and controller-manager serve on loopback with server-CA certificates
	// (without them each makes a self-signed RSA key at every start).
	for _, n := range []string{SchedulerServing, ControllerServing} {
		raw, _ := os.ReadFile(b.Path(n, ".crt"))
		c, err := parseCert(raw)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if err := c.CheckSignatureFrom(b.ServerCA.Cert); err != nil || c.VerifyHostname("127.0.0.1") != nil || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Errorf("%s: signed %v, names %v %v, usage %v", n, err, c.DNSNames, c.IPAddresses, c.ExtKeyUsage)
		}
	}
	before, _ := os.ReadFile(b.Path(APIServerServing, ".crt"))
	ca1, _ := os.ReadFile(b.Path(ServerCA, ".crt"))
	// Second start with the same names: nothing changes.
	if _, err := EnsureCluster(spec(dir)); err != nil {
		t.Fatal(err)
	}
	same, _ := os.ReadFile(b.Path(APIServerServing, ".crt"))
	if string(same) != string(before) {
		t.Error("serving cert re-issued although nothing changed")
	}
	// A new SAN re-issues the serving cert but keeps the CA.
	if _, err := EnsureCluster(spec(dir, "edge.example")); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(b.Path(APIServerServing, ".crt"))
	ca2, _ := os.ReadFile(b.Path(ServerCA, ".crt"))
	if string(after) == string(before) || string(ca1) != string(ca2) {
		t.Error("want new serving cert and unchanged CA after a SAN change")
	}
	c2, _ := parseCert(after)
	if !strings.Contains(strings.Join(c2.DNSNames, ","), "edge.example") {
		t.Errorf("SANs %v lack edge.example", c2.DNSNames)
	}
}

func TestCorruptCAIsReported(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ServerCA+".crt"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(dir, ServerCA+".key"), []byte("junk"), 0o600)
	if _, err := EnsureCluster(spec(dir)); err == nil || !strings.Contains(err.Error(), "load CA") {
		t.Fatalf("got %v, want load CA error", err)
	}
}

func TestKubeconfigMode(t *testing.T) {
	dir := t.TempDir()
	b, err := EnsureCluster(spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "admin.yaml")
	if err := Kubeconfig(p, "https://127.0.0.1:6443", b.ServerCA.CertPEM, dir, Admin, 0o600); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", info.Mode().Perm())
	}
}
