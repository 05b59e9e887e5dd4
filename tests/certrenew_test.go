package tests

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestMultiNodeCertRenewal: with leaf certificates living 4 minutes, the server and an agent
// renew theirs while running. After the first certificates expired, the apiserver serves a
// new one, kubectl (admin kubeconfig) works, both kubelets heartbeat, and the apiserver still
// reaches the agent's kubelet (logs, exec) over the renewed certificates on both sides.
func TestMultiNodeCertRenewal(t *testing.T) {
	c := checkedCluster(t)
	img, imgName := harness.TestImage(t)
	srv, token := startServer(t, c, img, "--leaf-cert-lifetime", "4m")
	a := startAgent(t, c, img, "a1", token, srv.URL())
	waitReady(t, srv, "a1", 3*time.Minute)
	first, expires := servingSerial(t, srv.IP+":6443")
	agentCert := filepath.Join(a.DataDir(), "agent", "tls", "client-kubelet.crt")
	agentFirst := certNotAfter(t, agentCert)
	if left := time.Until(expires); left > 4*time.Minute {
		t.Fatalf("serving certificate lives %s, want at most 4m", left)
	}
	apply(t, srv, fmt.Sprintf(podYAML, "web-a1", "a1", imgName))
	// Wait past the expiry of every first certificate (the agent's were issued last).
	wait := time.Until(agentFirst.Add(20 * time.Second))
	t.Logf("waiting %s for the first certificates to expire", wait.Round(time.Second))
	time.Sleep(wait)

	if now, notAfter := servingSerial(t, srv.IP+":6443"); now == first || !notAfter.After(time.Now()) {
		t.Errorf("apiserver serves serial %s until %s, first was %s", now, notAfter, first)
	}
	if na := certNotAfter(t, agentCert); !na.After(time.Now()) {
		t.Errorf("agent's kubelet certificate expired at %s and was not renewed", na)
	}
	srv.MustKubectl("get", "nodes")
	// Both kubelets still reach the apiserver: their leases (renewed every 10 s) are fresh.
	for _, n := range []string{"s1", "a1"} {
		harness.Eventually(t, time.Minute, n+" lease renewed after the first certificates expired", func() error {
			out, err := srv.Kubectl("-n", "kube-node-lease", "get", "lease", n, "-o", "jsonpath={.spec.renewTime}")
			if err != nil {
				return fmt.Errorf("%q %v", out, err)
			}
			renewed, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out))
			if err != nil || !renewed.After(agentFirst) {
				return fmt.Errorf("lease renewed at %q, before %s", out, agentFirst)
			}
			return nil
		})
	}
	waitCondition(t, srv, "a1", "True", time.Minute)
	harness.Eventually(t, time.Minute, "exec and logs on a1", func() error {
		out, err := srv.Kubectl("exec", "web-a1", "--", "/optest", "env", "HOSTNAME")
		if err != nil || !strings.Contains(out, "web-a1") {
			return fmt.Errorf("exec: %q %v", out, err)
		}
		_, err = srv.Kubectl("logs", "web-a1")
		return err
	})
	if !strings.Contains(a.Log(), "renewed node certificates") || !strings.Contains(srv.Log(), "renewed certificates") {
		t.Error("no renewal logged")
	}
}

func certNotAfter(t *testing.T, file string) time.Time {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}
