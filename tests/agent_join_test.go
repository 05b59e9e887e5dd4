package tests

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/tests/harness"
)

// agentBadInput runs against TestServer's server: every refused join names its cause in one
// line, exits 1 and leaves neither a data dir nor a node password behind.
func agentBadInput(t *testing.T, s *harness.Server) {
	b, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := strings.TrimSpace(string(b))
	pin, cred, _ := strings.Cut(cluster, "::")
	url := "https://127.0.0.1:6443"
	short, code := tokenCmd(s, "create", "--ttl", "1s")
	if code != 0 {
		t.Fatalf("token create: %s", short)
	}
	// Another machine already holds node "taken".
	if _, err := s.Kubectl("-n", "kube-system", "create", "secret", "generic", "taken.node-password.outpost", "--from-literal=hash=0"); err != nil {
		t.Fatal(err)
	}
	own := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"))
	// A Node registered without a join has no node password: no token holder may take it.
	ghost := filepath.Join(t.TempDir(), "ghost.yaml")
	os.WriteFile(ghost, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: ghost}\n"), 0o600)
	if _, err := s.Kubectl("apply", "-f", ghost); err != nil {
		t.Fatal(err)
	}
	defer s.Kubectl("delete", "node", "ghost", "--wait=false")
	mitm, tokensSeen := caBundleInTheMiddle(t, s)
	time.Sleep(1100 * time.Millisecond) // the 1 s token expires
	for _, tc := range []struct {
		name, node, server, token, want string
	}{
		{"wrong token", "n1", url, pin + "::abcdef.0123456789abcdef", "wrong token"},
		{"CA pin mismatch", "n1", url, "OP10" + strings.Repeat("0", 64) + "::" + cred, "server CA does not match the token's pin"},
		{"unreachable server", "n1", "https://127.0.0.1:1", cluster, "server unreachable"},
		{"expired token", "n1", url, short, "expired token"},
		{"node name taken", "taken", url, cluster, `node "taken" already belongs to another machine`},
		{"malformed token", "n1", url, "K10abc::server:xyz", "--token: malformed token"},
		{"not https", "n1", "http://127.0.0.1:6443", cluster, "want https://HOST:PORT"},
		{"CA bundle in the middle", "n1", mitm, cluster, "2 certificates where the token pins exactly one CA"},
		{"server's node name", own, url, cluster, `node name "` + own + `" is the server's own node`},
		{"registered node without password", "ghost", url, cluster, "kubectl delete node ghost"},
		{"apiserver name", "kubernetes.default.svc.cluster.local", url, cluster, "name of the API server"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			data, pw, conf := filepath.Join(dir, "data"), filepath.Join(dir, "node", "password"), filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			harness.Seed(t, s.Bin, data)
			out, err := exec.Command(s.Bin, "agent", "--server", tc.server, "--token", tc.token, "--node-name", tc.node,
				"--data-dir", data, "--node-password-file", pw, "--config", conf).CombinedOutput()
			msg := strings.TrimSpace(string(out))
			if exitCode(err) != 1 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 0 {
				t.Errorf("exit %d, output %q; want one line with %q", exitCode(err), msg, tc.want)
			}
			if state := harness.StateIn(data); len(state) > 0 {
				t.Errorf("%v left behind in %s", state, data)
			}
			for _, p := range []string{pw} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind", p)
				}
			}
		})
	}
	if out, _ := s.Kubectl("get", "nodes", "-o", "name"); strings.Contains(out, "n1") || strings.Contains(out, "taken") {
		t.Errorf("refused joins made nodes: %s", out)
	}
	if n := tokensSeen.Load(); n != 0 {
		t.Errorf("the server in the middle received the token %d times", n)
	}
}

// caBundleInTheMiddle serves, over TLS with a certificate of its own CA, a /cacerts answering
// the cluster's real CA followed by its own: the pin matches the first certificate. It
// counts the requests that carried a join token.
func caBundleInTheMiddle(t *testing.T, s *harness.Server) (string, *atomic.Int32) {
	t.Helper()
	real, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "tls", "server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	evil, err := pki.EnsureCluster(pki.ClusterSpec{Dir: t.TempDir(), IPs: []net.IP{net.ParseIP("127.0.0.1")}, NodeName: "evil", NodeIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	seen := &atomic.Int32{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Outpost-Token") != "" {
			seen.Add(1)
		}
		w.Write(append(append([]byte{}, real...), evil.ServerCA.CertPEM...))
	}))
	cert, err := tls.LoadX509KeyPair(evil.Path(pki.APIServerServing, ".crt"), evil.Path(pki.APIServerServing, ".key"))
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, seen
}

func tokenCmd(s *harness.Server, args ...string) (string, int) {
	full := append([]string{"token", args[0], "--kubeconfig", s.Kubeconfig}, args[1:]...)
	out, err := exec.Command(s.Bin, full...).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], exitCode(err)
}

// TestServerDisableAgent: a server with --disable-agent runs the control plane only.
func TestServerDisableAgent(t *testing.T) {
	s := harness.NewServer(t, "--disable-agent")
	t.Cleanup(func() {
		if left := harness.Leftovers(s.Root); len(left) > 0 {
			t.Errorf("left on the host after cleanup: %v", left)
		}
	})
	t.Cleanup(s.Cleanup)
	s.Start()
	if err := s.WaitLog("no node here (--disable-agent)", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if out := s.MustKubectl("get", "nodes", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("nodes: %q", out)
	}
	if strings.Contains(s.Log(), "[kubelet]") || strings.Contains(s.Log(), "[containerd]") {
		t.Error("kubelet or containerd ran")
	}
	// Aggregated APIs are reached without a pod network or kube-proxy here: the metrics API
	// (in-process, on the host) becomes Available.
	harness.Eventually(t, time.Minute, "metrics API available", func() error {
		out, err := s.Kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions[?(@.type=='Available')].status}")
		if err != nil || out != "True" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
}
