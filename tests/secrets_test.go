package tests

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// tool runs an outpost tool command against the server's data and runtime dirs.
func tool(s *harness.Server, args ...string) (string, int) {
	full := append(args, "--data-dir", s.DataDir(), "--runtime-dir", s.RunDir(), "--config", filepath.Join(s.Root, "config.yaml"))
	out, err := exec.Command(s.Bin, full...).CombinedOutput()
	return string(out), exitCode(err)
}

// servingSerial is the serial of the certificate the apiserver presents now.
func servingSerial(t *testing.T, addr string) (string, time.Time) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	return leaf.SerialNumber.String(), leaf.NotAfter
}

// certificateCheckAndRotate: `certificate check` lists every certificate with its expiry;
// `certificate rotate` re-issues the leaves, the running apiserver serves the new one, and
// kubectl keeps working.
func certificateCheckAndRotate(t *testing.T, s *harness.Server) {
	out, code := tool(s, "certificate", "check")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	for _, want := range []string{"serving-kube-apiserver", "kubelet-serving-ca (CA)", "client-supervisor", "EXPIRES"} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}
	before, _ := servingSerial(t, "127.0.0.1:6443")
	out, code = tool(s, "certificate", "rotate")
	if code != 0 || !strings.Contains(out, "rotated ") || !strings.Contains(out, "serving-kube-apiserver") || !strings.Contains(out, "client-admin") {
		t.Fatalf("rotate: exit %d\n%s", code, out)
	}
	harness.Eventually(t, 2*time.Minute, "apiserver serves the rotated certificate", func() error {
		if now, _ := servingSerial(t, "127.0.0.1:6443"); now == before {
			return fmt.Errorf("still serial %s", now)
		}
		return nil
	})
	s.MustKubectl("get", "nodes")
}

// secretsEncryption restarts the server with secrets-encryption set in its config file (with
// an unquoted octal kubeconfig mode, read as written): Secrets written before are encrypted,
// new ones never reach the datastore in plain text, and rotate-keys moves them to a new key.
func secretsEncryption(t *testing.T, s *harness.Server) {
	s.MustKubectl("create", "secret", "generic", "before-enc", "--from-literal=v=plainvalue-1234")
	s.Stop()
	conf := filepath.Join(s.Root, "config.yaml")
	if err := os.WriteFile(conf, []byte("secrets-encryption: true\nwrite-kubeconfig-mode: 0640\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(conf, []byte("{}\n"), 0o600)
	s.Start()
	if err := s.WaitLog("existing Secrets encrypted", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(s.Kubeconfig); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("write-kubeconfig-mode: 0640 gave %v (%v)", fi.Mode().Perm(), err)
	}
	s.MustKubectl("create", "secret", "generic", "after-enc", "--from-literal=v=s3cretvalue-5678")
	key := regexp.MustCompile(`(outpost-\S+) \(active`)
	status := func() (string, string) {
		out, code := tool(s, "secrets-encrypt", "status")
		m := key.FindStringSubmatch(out)
		if code != 0 || m == nil || !strings.Contains(out, "Encryption Status: Enabled") || !strings.Contains(out, "Provider: secretbox") {
			t.Fatalf("status: exit %d\n%s", code, out)
		}
		return out, m[1]
	}
	out, first := status()
	if strings.Contains(out, "not encrypted") || !strings.Contains(out, "with "+first+": ") {
		t.Errorf("after enabling:\n%s", out)
	}
	for _, f := range []string{"state.db", "state.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.DataDir(), "server", "db", f))
		if bytes.Contains(b, []byte("s3cretvalue-5678")) {
			t.Errorf("a Secret written with encryption on is in plain text in %s", f)
		}
	}
	out, code := tool(s, "secrets-encrypt", "rotate-keys")
	if code != 0 || !strings.Contains(out, "re-encrypted") {
		t.Fatalf("rotate-keys: exit %d\n%s", code, out)
	}
	out, second := status()
	if second == first || strings.Contains(out, first) || strings.Contains(out, "not encrypted") {
		t.Errorf("after rotate-keys (was %s):\n%s", first, out)
	}
	for name, want := range map[string]string{"before-enc": "plainvalue-1234", "after-enc": "s3cretvalue-5678"} {
		got := s.MustKubectl("get", "secret", name, "-o", "jsonpath={.data.v}")
		if dec, _ := exec.Command("sh", "-c", "echo "+got+" | base64 -d").Output(); string(dec) != want {
			t.Errorf("secret %s reads %q", name, dec)
		}
	}
}
