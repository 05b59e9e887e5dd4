package tests

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestHAEtcd: a SQLite server restarted with --cluster-init moves its state into embedded
// etcd (every object kept); two control-plane-only servers join it with --server and the
// token; an agent joins through the first. The first is SIGKILLed: the other two serve
// reads and writes, the object written before is there, the agent keeps its pod and reports
// Ready through them; the first comes back and rejoins its etcd cluster. Servers joining with
// a wrong token or through a server that does not answer are refused with one line, nothing
// written.
func TestHAEtcd(t *testing.T) {
	c := checkedCluster(t)
	img, imgName := harness.TestImage(t)
	s1, tok := startServer(t, c, img)
	t.Cleanup(s1.Stop)

	t.Run("SQLiteMigratesToEtcd", func(t *testing.T) {
		s1.MustKubectl("create", "configmap", "from-sqlite", "--from-literal=k=kept")
		s1.MustKubectl("create", "secret", "generic", "secret-from-sqlite", "--from-literal=s=also")
		s1.Stop()
		s1.Args = append(s1.Args, "--cluster-init")
		s1.Start()
		waitReady(t, s1, "s1", 3*time.Minute)
		if !strings.Contains(s1.Log(), "SQLite datastore migrated into etcd") {
			t.Error("no migration in s1's log")
		}
		if out, err := s1.Kubectl("get", "configmap", "from-sqlite", "-o", "jsonpath={.data.k}"); err != nil || out != "kept" {
			t.Errorf("configmap after the migration: %q %v", out, err)
		}
		if out, err := s1.Kubectl("get", "secret", "secret-from-sqlite", "-o", "jsonpath={.data.s}"); err != nil || out != "YWxzbw==" {
			t.Errorf("secret after the migration: %q %v", out, err)
		}
		if _, err := os.Stat(filepath.Join(s1.DataDir(), "server", "db", "state.db")); !os.IsNotExist(err) {
			t.Errorf("state.db still in place after the migration: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("JoinRefusals", func(t *testing.T) {
		root := t.TempDir()
		data := filepath.Join(root, "data")
		wrong := tok[:len(tok)-4] + "zzzz"
		if wrong == tok {
			wrong = tok[:len(tok)-4] + "yyyy"
		}
		base := []string{"server", "--data-dir", data, "--runtime-dir", filepath.Join(root, "run"), "--config", "/dev/null",
			"--write-kubeconfig", filepath.Join(root, "kc.yaml")}
		out, code := run(t, exec.Command(s1.Bin, append(base, "--server", s1.URL(), "--token", wrong)...))
		assertRefused(t, out, code, 1, data, "token not accepted")
		out, code = run(t, exec.Command(s1.Bin, append(base, "--server", "https://10.99.0.250:6443", "--token", tok)...))
		assertRefused(t, out, code, 1, data, "10.99.0.250", "unreachable")
		// Every server of a cluster has its settings (k3s: critical configuration value mismatch).
		out, code = run(t, exec.Command(s1.Bin, append(base, "--server", s1.URL(), "--token", tok, "--service-cidr", "10.44.0.0/16")...))
		assertRefused(t, out, code, 1, data, "critical configuration value mismatch: --service-cidr is 10.44.0.0/16 here and 10.43.0.0/16 in the cluster")
	})

	s2 := c.AddNode("s2", "server", "--disable-agent", "--server", s1.URL(), "--token", tok)
	s3 := c.AddNode("s3", "server", "--disable-agent", "--server", s1.URL(), "--token", tok)
	var a1 *harness.Node
	t.Cleanup(func() {
		for _, n := range []*harness.Node{a1, s3, s2} {
			if n != nil {
				n.Stop()
			}
		}
	})
	// s2 and s3 are clones of s1's machine: one host name, node names of their own.
	s2.Hostname, s3.Hostname = s1.Hostname, s1.Hostname
	t.Run("ThreeServers", func(t *testing.T) {
		// Started at the same instant, as a rollout starts them: etcd admits one learner at a
		// time, so one of the two waits its turn.
		s2.Start()
		s3.Start()
		for _, s := range []*harness.Node{s2, s3} {
			serving(t, s)
		}
		if !strings.Contains(s2.Log()+s3.Log(), "etcd member add not possible yet") {
			t.Log("neither join had to wait for the other (started apart by chance)")
		}
		out, code := tool(s1.Server, "etcd", "member", "list")
		if code != 0 || strings.Count(out, "https://10.99.0.") != 3 {
			t.Fatalf("etcd members (exit %d):\n%s", code, out)
		}
		for _, name := range []string{"s1", "s2", "s3"} {
			if !strings.Contains(out, name+" ") {
				t.Errorf("member %s missing:\n%s", name, out)
			}
		}
		s1.MustKubectl("create", "configmap", "before-kill", "--from-literal=k=v")
		for _, s := range []*harness.Node{s2, s3} {
			if out, err := s.Kubectl("get", "configmap", "from-sqlite", "-o", "jsonpath={.data.k}"); err != nil || out != "kept" {
				t.Errorf("%s reads the migrated configmap: %q %v", s.Name, out, err)
			}
		}
		a1 = startAgent(t, c, img, "a1", agentToken(t, s1), s1.URL())
		waitReady(t, s1, "a1", 3*time.Minute)
		apply(t, s1, fmt.Sprintf(podYAML, "web-a1", "a1", imgName))
		harness.Eventually(t, 2*time.Minute, "pod on a1 running", func() error {
			out, err := s2.Kubectl("get", "pod", "web-a1", "-o", "jsonpath={.status.phase}")
			if err != nil || out != "Running" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
		// Each apiserver's identity Lease is its own, though the host name is shared.
		harness.Eventually(t, 30*time.Second, "three apiserver identity leases", func() error {
			out, err := s1.Kubectl("get", "lease", "-n", "kube-system", "-l", "apiserver.kubernetes.io/identity=kube-apiserver", "-o", "name")
			if n := strings.Count(out, "lease"); err != nil || n != 3 {
				return fmt.Errorf("%d leases: %s %v", n, out, err)
			}
			return nil
		})
		harness.Eventually(t, time.Minute, "a1 knows the other servers", func() error {
			if !strings.Contains(a1.Log(), s2.IP+":6443") || !strings.Contains(a1.Log(), s3.IP+":6443") {
				return fmt.Errorf("a1's load balancer has not learned s2 and s3")
			}
			return nil
		})
	})
	if t.Failed() {
		return
	}

	t.Run("SharedHostNameHarmless", func(t *testing.T) {
		for _, s := range []*harness.Node{s1, s2, s3} {
			if fights := grepLines(s.Log(), "Failed to update lease", 50); strings.Contains(fights, "the object has been modified") {
				t.Errorf("%s's apiserver fights over an identity lease:\n%s", s.Name, fights)
			}
		}
	})
	t.Run("AgentTokenJoinsNoServer", func(t *testing.T) { agentTokenJoinsNoServer(t, c, s1, s2, tok) })
	t.Run("NoSecretInCmdline", func(t *testing.T) {
		// s2 and s3 run with --token, a1 with --token (the agent token): no process on the
		// machine shows either in its command line.
		for name, tk := range map[string]string{"cluster token": tok, "agent token": agentToken(t, s1)} {
			_, secret, _ := strings.Cut(tk, "::")
			if pids := cmdlinesHolding(t, strings.TrimSpace(secret)); len(pids) > 0 {
				t.Errorf("the %s is in the command line of %v", name, pids)
			}
		}
	})

	t.Run("FirstServerKilled", func(t *testing.T) {
		// Under a steady write load through s1: every write it acknowledged is kept.
		load := harness.StartWriteLoad(t, s1.Kubeconfig, s1.URL(), "etcd-kill")
		time.Sleep(5 * time.Second)
		s1.Kill()
		killed := time.Now()
		acked, failed := load.Stop()
		defer func() {
			missing, err := harness.Missing(t, s2.Kubeconfig, s2.URL(), "etcd-kill", acked)
			if err != nil || len(acked) < 10 || len(missing) > 0 {
				t.Errorf("%d writes acknowledged by s1 before its kill, lost: %v (%v)", len(acked), missing, err)
			}
			t.Logf("SIGKILL under load: %d acknowledged writes all kept (%d failed)", len(acked), failed)
		}()
		for _, s := range []*harness.Node{s2, s3} {
			name := "after-kill-" + s.Name
			harness.Eventually(t, 30*time.Second, "writes through "+s.Name, func() error {
				_, err := s.Kubectl("--request-timeout=2s", "create", "configmap", name)
				if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
					return nil
				}
				return err
			})
			t.Logf("%s took a write %.1fs after s1 was killed", s.Name, time.Since(killed).Seconds())
			if out, err := s.Kubectl("get", "configmap", "before-kill", "-o", "jsonpath={.data.k}"); err != nil || out != "v" {
				t.Errorf("object written before the kill, through %s: %q %v", s.Name, out, err)
			}
		}
		waitRenewed(t, s3, "a1", killed.Add(2*time.Second), 90*time.Second)
		t.Logf("a1 heartbeat through the others %.1fs after the kill", time.Since(killed).Seconds())
		waitReady(t, s2, "a1", time.Minute)
		if out, err := s3.Kubectl("get", "pod", "web-a1", "-o", "jsonpath={.status.phase}"); err != nil || out != "Running" {
			t.Errorf("a1's pod after the kill: %q %v", out, err)
		}
	})

	t.Run("FirstServerRejoins", func(t *testing.T) {
		restarted := time.Now()
		s1.Start()
		waitRenewed(t, s1, "s1", restarted, 3*time.Minute)
		for _, name := range []string{"after-kill-s2", "after-kill-s3"} {
			if _, err := s1.Kubectl("get", "configmap", name); err != nil {
				t.Errorf("s1 does not see %s, written while it was down: %v", name, err)
			}
		}
		out, code := tool(s1.Server, "etcd", "member", "list")
		if code != 0 || strings.Count(out, "https://10.99.0.") != 3 || strings.Contains(out, "not started") {
			t.Errorf("etcd members after the rejoin (exit %d):\n%s", code, out)
		}
	})

	t.Run("PartitionedServer", func(t *testing.T) { partitioned(t, s1, s2, s3) })
	t.Run("TokenRotatedOnEveryServer", func(t *testing.T) {
		if rotated := rotateEverywhere(t, s1, []*harness.Node{s1, s2, s3}, tok, false); rotated != "" {
			tok = rotated // the snapshot below holds the bootstrap data sealed with the new one
		}
		oldAgent := agentToken(t, s1)
		newAgent := rotateEverywhere(t, s1, []*harness.Node{s1, s2, s3}, oldAgent, true)
		// Through another server than the one it was rotated on: the old agent token joins no
		// more, the new one does (as far as the name, which is s2's).
		if out, code := tryJoin(t, c, s3, oldAgent, "a9"); code != 1 || !strings.Contains(out, "wrong token") {
			t.Errorf("a join with the old agent token: exit %d: %s", code, out)
		}
		if out, code := tryJoin(t, c, s3, newAgent, "s2"); code != 1 || !strings.Contains(out, "another machine") {
			t.Errorf("a join with the new agent token: exit %d: %s", code, out)
		}
	})

	t.Run("SnapshotRestoredElsewhere", func(t *testing.T) {
		out, code := tool(s2.Server, "etcd-snapshot", "save", "--name", "ha", "--node-name", "s2")
		if code != 0 || !strings.Contains(out, "saved") {
			t.Fatalf("etcd-snapshot save on s2 (exit %d): %s", code, out)
		}
		files, _ := filepath.Glob(filepath.Join(s2.DataDir(), "server", "db", "snapshots", "ha-s2-*"))
		if len(files) != 1 {
			t.Fatalf("snapshot files %v", files)
		}
		s4 := c.AddNode("s4", "server", "--disable-agent", "--cluster-init", "--cluster-reset", "--cluster-reset-restore-path", files[0], "--token", tok)
		s4.Start()
		defer s4.Stop()
		serving(t, s4)
		for _, name := range []string{"from-sqlite", "before-kill", "after-kill-s2"} {
			if _, err := s4.Kubectl("get", "configmap", name); err != nil {
				t.Errorf("restored server lacks %s: %v", name, err)
			}
		}
		out, _ = tool(s4.Server, "etcd", "member", "list")
		if strings.Count(out, "https://") != 1 || !strings.Contains(out, "s4 ") {
			t.Errorf("restored server's etcd members:\n%s", out)
		}
	})

	t.Run("MemberRemoved", func(t *testing.T) {
		// Flags before the name: urfave/cli stops at the first argument.
		cmd := exec.Command(s1.Bin, "etcd", "member", "remove", "--data-dir", s1.DataDir(), "--runtime-dir", s1.RunDir(), "--config", "/dev/null", "s3")
		out, code := run(t, cmd)
		if code != 0 {
			t.Fatalf("member remove (exit %d): %s", code, out)
		}
		harness.Eventually(t, time.Minute, "s3 stops, removed", func() error {
			if !strings.Contains(s3.Log(), "removed from the cluster") {
				return fmt.Errorf("s3 runs on")
			}
			return nil
		})
		out, _ = tool(s1.Server, "etcd", "member", "list")
		if strings.Count(out, "https://") != 2 || strings.Contains(out, "s3 ") {
			t.Errorf("members after removing s3:\n%s", out)
		}
		if _, err := s2.Kubectl("--request-timeout=5s", "create", "configmap", "after-remove"); err != nil {
			t.Errorf("writes after the removal: %v", err)
		}
	})

	t.Run("QuorumLostThenClusterReset", func(t *testing.T) {
		s2.Stop()
		if _, err := s1.Kubectl("--request-timeout=3s", "create", "configmap", "no-quorum"); err == nil {
			t.Error("s1 took a write as one of two members")
		}
		s1.Stop()
		s1.Args = append(s1.Args, "--cluster-reset")
		s1.Start()
		serving(t, s1)
		harness.Eventually(t, time.Minute, "a write after the reset", func() error {
			_, err := s1.Kubectl("--request-timeout=3s", "create", "configmap", "after-reset")
			if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
				return nil
			}
			return err
		})
		out, _ := tool(s1.Server, "etcd", "member", "list")
		if strings.Count(out, "https://") != 1 || !strings.Contains(out, "s1 ") {
			t.Errorf("members after the reset:\n%s", out)
		}
		if _, err := s1.Kubectl("get", "configmap", "after-remove"); err != nil {
			t.Errorf("data from before the reset: %v", err)
		}
	})
}

// agentToken is the agent token a server made on its first start.
func agentToken(t *testing.T, s *harness.Node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "agent-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// agentTokenJoinsNoServer: the agent token (which a1 joined with) opens neither the server
// join, nor the bootstrap data, nor a member add; the cluster token does not replace s2's
// member without s2's node password, nor may an agent take s2's name. s2 stays a member.
func agentTokenJoinsNoServer(t *testing.T, c *harness.Cluster, s1, s2 *harness.Node, clusterToken string) {
	agent := agentToken(t, s1)
	if agent == clusterToken {
		t.Fatal("the agent token is the cluster token")
	}
	root := t.TempDir()
	data := filepath.Join(root, "data")
	out, code := run(t, exec.Command(s1.Bin, "server", "--data-dir", data, "--runtime-dir", filepath.Join(root, "run"), "--config", "/dev/null",
		"--write-kubeconfig", filepath.Join(root, "kc.yaml"), "--node-password-file", filepath.Join(root, "pw"), "--server", s1.URL(), "--token", agent))
	assertRefused(t, out, code, 1, data, "token not accepted")
	if _, err := os.Stat(filepath.Join(root, "pw")); err == nil {
		t.Error("the refused server join wrote a node password")
	}
	call := func(method, path, tok, body string) (int, string) {
		return serverJoinCall(t, s1, method, path, tok, body)
	}
	if code, body := call(http.MethodGet, "/v1-outpost/server-bootstrap", agent, ""); code != http.StatusUnauthorized {
		t.Errorf("bootstrap data with the agent token: %d %.100q", code, body)
	}
	s2Member := fmt.Sprintf(`{"name":"s2","peerURL":"https://%s:2380","nodePassword":"not-s2s-node-password"}`, s2.IP)
	if code, body := call(http.MethodPost, "/v1-outpost/etcd-member", agent, s2Member); code != http.StatusUnauthorized {
		t.Errorf("member add naming s2 with the agent token: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/v1-outpost/etcd-member", clusterToken, s2Member); code != http.StatusConflict {
		t.Errorf("member add naming s2 without its node password: %d %s", code, body)
	}
	out, code = tool(s1.Server, "etcd", "member", "list")
	if code != 0 || !strings.Contains(out, "s2 ") || !strings.Contains(out, s2.IP+":2380") || strings.Contains(out, "not started") {
		t.Errorf("s2 after the refused member adds (exit %d):\n%s", code, out)
	}
	if _, err := s2.Kubectl("--request-timeout=5s", "get", "--raw", "/readyz"); err != nil {
		t.Errorf("s2 after the refused member adds: %v", err)
	}
	// s2 runs without a node (--disable-agent), and its name is still its own: an agent may
	// not join under it (a later `kubectl delete node s2` would remove s2's etcd member).
	if out, code := tryJoin(t, c, s1, agent, "s2"); code != 1 || !strings.Contains(out, "another machine") {
		t.Errorf("an agent joining as s2: exit %d: %s", code, out)
	}
}

// cmdlinesHolding lists the processes whose /proc/PID/cmdline holds s, with that command line.
func cmdlinesHolding(t *testing.T, s string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// rotateEverywhere runs `outpost token rotate` (--agent: the agent token) on from: within 30 s
// every server's token file holds the new token, the command says the old one stopped working
// everywhere, and the old one no longer opens the bootstrap data through any server. It
// returns the new token.
func rotateEverywhere(t *testing.T, from *harness.Node, servers []*harness.Node, old string, agent bool) string {
	t.Helper()
	args, file := []string{"token", "rotate"}, "token"
	if agent {
		args, file = append(args, "--agent"), "agent-token"
	}
	start := time.Now()
	out, code := tool(from.Server, args...)
	rotated := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if code != 0 || !strings.HasPrefix(rotated, "OP10") || rotated == old || !strings.Contains(out, "stopped working on every server") {
		t.Fatalf("token rotate %v (exit %d):\n%s", args, code, out)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the rotation took %s on every server, want 30 s at most", took)
	}
	for _, s := range servers {
		b, err := os.ReadFile(filepath.Join(s.DataDir(), "server", file))
		if err != nil || strings.TrimSpace(string(b)) != rotated {
			t.Errorf("%s's %s after the rotation: %q %v", s.Name, file, b, err)
		}
	}
	if !agent {
		for _, s := range servers {
			if code, _ := serverJoinCall(t, s, http.MethodGet, "/v1-outpost/server-bootstrap", old, ""); code != http.StatusUnauthorized {
				t.Errorf("the old cluster token still opens the bootstrap data through %s: %d", s.Name, code)
			}
		}
		if code, _ := serverJoinCall(t, servers[len(servers)-1], http.MethodGet, "/v1-outpost/server-bootstrap", rotated, ""); code != http.StatusOK {
			t.Errorf("the new cluster token does not open the bootstrap data: %d", code)
		}
	}
	return rotated
}

// serverJoinCall calls the server-join API of s with tok, as a joining server would.
func serverJoinCall(t *testing.T, s *harness.Node, method, path, tok, body string) (int, string) {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "tls", "server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := strings.Cut(tok, "::")
	req.Header.Set("X-Outpost-Token", secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// grepLines is the first n lines of log that hold sub.
func grepLines(log, sub string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, sub) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// partitioned cuts s3 off the other two: it stops taking writes, they go on; once its link is
// back it catches up with what they took meanwhile.
func partitioned(t *testing.T, s1, s2, s3 *harness.Node) {
	loopback := func(args ...string) (string, error) {
		return s3.Exec(append([]string{"env", "OUTPOST_DATA_DIR=" + s3.DataDir(), s3.Bin, "kubectl", "--kubeconfig", s3.Kubeconfig,
			"--server", "https://127.0.0.1:6443", "--request-timeout", "8s"}, args...)...)
	}
	s3.LinkDown()
	cut := time.Now()
	defer s3.LinkUp()
	harness.Eventually(t, time.Minute, "s3 refuses writes while cut off", func() error {
		if out, err := loopback("create", "configmap", fmt.Sprintf("cut-off-%d", time.Now().UnixNano())); err == nil {
			return fmt.Errorf("s3 took a write while cut off: %s", out)
		}
		return nil
	})
	t.Logf("s3 refused writes %.1fs after it was cut off", time.Since(cut).Seconds())
	for _, s := range []*harness.Node{s1, s2} {
		name := "while-s3-cut-" + s.Name
		harness.Eventually(t, 30*time.Second, "writes through "+s.Name, func() error {
			_, err := s.Kubectl("--request-timeout=5s", "create", "configmap", name)
			if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
				return nil
			}
			return err
		})
	}
	s3.LinkUp()
	back := time.Now()
	harness.Eventually(t, 2*time.Minute, "s3 caught up", func() error {
		for _, name := range []string{"while-s3-cut-s1", "while-s3-cut-s2"} {
			if _, err := loopback("get", "configmap", name); err != nil {
				return err
			}
		}
		_, err := loopback("create", "configmap", "s3-writes-again")
		if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
			return nil
		}
		return err
	})
	t.Logf("s3 caught up and took writes %.1fs after its link came back", time.Since(back).Seconds())
}
