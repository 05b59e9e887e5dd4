package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

const readyLine = "Outpost is ready"

// TestServer runs the foundation's acceptance checks against one server, in order: each step
// builds on the cluster state the previous one left.
func TestServer(t *testing.T) {
	s := harness.NewServer(t)
	// Runs after s.Cleanup (cleanups run last-in first-out): nothing may be left behind.
	t.Cleanup(func() {
		if left := harness.Leftovers(s.Root); len(left) > 0 {
			t.Errorf("left on the host after cleanup: %v", left)
		}
	})
	t.Cleanup(s.Cleanup)
	img, imgName := harness.TestImage(t)
	// User archives in agent/images/ are imported at start: that is how the test image arrives.
	if err := os.MkdirAll(filepath.Join(s.DataDir(), "agent", "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, img, filepath.Join(s.DataDir(), "agent", "images", "optest.tar"))
	regs := startRegistries(t, img, "127.0.0.1")
	s.Args = append(s.Args, "--private-registry", regs.file)
	s.Start()
	if err := s.WaitLog(readyLine, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("node Ready %.1fs after start", time.Since(s.Started()).Seconds())

	t.Run("NodeReady", func(t *testing.T) {
		out := s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
		if strings.TrimSpace(out) != "True" {
			t.Fatalf("node Ready = %q", out)
		}
	})
	t.Run("Status", func(t *testing.T) {
		// outpost status shows each component by stage; all ready or running once the node is.
		harness.Eventually(t, time.Minute, "every component ready", func() error {
			out, code := tool(s, "status")
			if code != 0 {
				return fmt.Errorf("exit %d:\n%s", code, out)
			}
			rows := map[string]string{} // stage and component: state
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) >= 3 {
					rows[f[0]+" "+f[1]] = f[2]
				}
			}
			for want, states := range map[string]string{"datastore kine": "ready", "api kube-apiserver": "ready", "runtime containerd": "ready",
				"controllers deploy": "ready running", "network flannel": "running", "kubelet kubelet": "ready"} {
				if st := rows[want]; st == "" || !strings.Contains(states, st) {
					return fmt.Errorf("%s is %q, want %s, in:\n%s", want, st, states, out)
				}
			}
			return nil
		})
	})
	t.Run("LogLinesTagged", func(t *testing.T) {
		log := s.Log()
		for _, tag := range []string{"[kine]", "[outpost]", "[containerd]", "[deploy]", "[flannel]"} {
			if !strings.Contains(log, tag) {
				t.Errorf("no %s line in the server log", tag)
			}
		}
		// Upstream info lines (hundreds at start-up) stay behind -v 1; their errors pass.
		for _, chatter := range []string{"[kube-apiserver] INFO", "[kubelet] INFO", "[kube-controller-manager] INFO", "[k8s-client] INFO", "[k8s] INFO"} {
			if n := strings.Count(log, chatter); n > 0 {
				t.Errorf("%d %q lines at the default verbosity", n, chatter)
			}
		}
		if !strings.Contains(log, s.Kubeconfig) {
			t.Error("ready line does not name the kubeconfig")
		}
	})
	t.Run("KubeconfigMode", func(t *testing.T) {
		fi, err := os.Stat(s.Kubeconfig)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("kubeconfig mode %v err %v", fi.Mode().Perm(), err)
		}
		keys, _ := filepath.Glob(filepath.Join(s.DataDir(), "server", "tls", "*.key"))
		if len(keys) == 0 {
			t.Fatal("no keys")
		}
		for _, k := range keys {
			if fi, _ := os.Stat(k); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v", k, fi.Mode().Perm())
			}
		}
	})
	t.Run("JoinTokens", func(t *testing.T) {
		f := filepath.Join(s.DataDir(), "server", "token")
		b, err := os.ReadFile(f)
		if fi, _ := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(string(b), "OP10") {
			t.Fatalf("cluster token file: %v %q", err, b)
		}
		tok := func(args ...string) (string, int) {
			full := append([]string{"token", args[0], "--kubeconfig", s.Kubeconfig}, args[1:]...)
			out, err := exec.Command(s.Bin, full...).CombinedOutput()
			return strings.TrimSpace(string(out)), exitCode(err)
		}
		created, code := tok("create", "--ttl", "1h", "--description", "lab")
		if code != 0 || !strings.HasPrefix(created, "OP10") || created[4:68] != string(b)[4:68] {
			t.Fatalf("token create (%d): %q; pin must match the cluster token's", code, created)
		}
		id := created[70:76]
		if out, _ := tok("list"); !strings.Contains(out, id) || !strings.Contains(out, "lab") {
			t.Errorf("list lacks %s:\n%s", id, out)
		}
		if _, code := tok("delete", id); code != 0 {
			t.Errorf("delete exit %d", code)
		}
		if out, code := tok("delete", id); code != 1 || !strings.Contains(out, "no token") {
			t.Errorf("second delete (%d): %s", code, out)
		}
	})
	t.Run("AgentBadInput", func(t *testing.T) { agentBadInput(t, s) })
	t.Run("AnonymousRefused", func(t *testing.T) {
		out, _ := exec.Command("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:6443/api/v1/namespaces").Output()
		if string(out) != "401" {
			t.Errorf("anonymous GET /api/v1/namespaces = %s, want 401", out)
		}
		out, _ = exec.Command("curl", "-sk", "https://127.0.0.1:6443/readyz").Output()
		if string(out) != "ok" {
			t.Errorf("anonymous /readyz = %q, want ok", out)
		}
		// The join API's CA path is public (the agent checks it against its pin); the rest is not.
		out, _ = exec.Command("curl", "-sk", "https://127.0.0.1:6443/v1-outpost/cacerts").Output()
		if !strings.HasPrefix(string(out), "-----BEGIN CERTIFICATE-----") {
			t.Errorf("anonymous cacerts = %q", out)
		}
		out, _ = exec.Command("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:6443/v1-outpost/other").Output()
		if string(out) != "401" && string(out) != "403" {
			t.Errorf("anonymous /v1-outpost/other = %s, want refused", out)
		}
	})
	t.Run("CoreDNSAndKubeSystemReady", func(t *testing.T) {
		harness.Eventually(t, 2*time.Minute, "coredns ready", func() error {
			out, err := s.Kubectl("-n", "kube-system", "get", "deploy", "coredns", "-o", "jsonpath={.status.readyReplicas}")
			if err != nil || strings.TrimSpace(out) != "1" {
				return fmt.Errorf("readyReplicas %q %v", out, err)
			}
			return nil
		})
		out := s.MustKubectl("-n", "kube-system", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}")
		for _, l := range strings.Fields(out) {
			if !strings.HasSuffix(l, "=Running") {
				t.Errorf("kube-system pod not Running: %s", l)
			}
		}
	})

	t.Run("QuietWhenIdle", func(t *testing.T) {
		// Once start-up work has settled, an idle server writes at most one line a minute.
		time.Sleep(15 * time.Second)
		before := len(s.Log())
		time.Sleep(time.Minute)
		if lines := strings.Split(strings.TrimSpace(s.Log()[before:]), "\n"); len(lines) > 1 {
			t.Errorf("%d log lines in an idle minute:\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})

	applyWorkload(t, s, imgName)

	t.Run("ServiceReachesBothReplicas", func(t *testing.T) {
		seen := map[string]bool{}
		harness.Eventually(t, time.Minute, "both replicas answer through the service", func() error {
			out, err := s.Kubectl("exec", "client", "--", "/optest", "get", "http://web.default.svc.cluster.local/")
			if err != nil {
				return err
			}
			if f := strings.Fields(out); len(f) == 4 && f[0] == "200" {
				seen[f[3]] = true
			}
			if len(seen) < 2 {
				return fmt.Errorf("answers from %v", seen)
			}
			return nil
		})
	})
	t.Run("DNS", func(t *testing.T) {
		out := s.MustKubectl("exec", "client", "--", "/optest", "resolve", "kubernetes.default")
		if strings.TrimSpace(out) != "10.43.0.1" {
			t.Errorf("kubernetes.default resolves to %q", out)
		}
		s.MustKubectl("exec", "client", "--", "/optest", "tcp", "kubernetes.default:443")
		out = s.MustKubectl("exec", "client", "--", "/optest", "resolve", "web")
		svcIP := strings.TrimSpace(s.MustKubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"))
		if strings.TrimSpace(out) != svcIP {
			t.Errorf("web resolves to %q, service IP %s", out, svcIP)
		}
	})
	t.Run("ServiceCIDRWithoutServiceRefused", func(t *testing.T) {
		// An unassigned ClusterIP, and a Service's IP on a port it lacks: refused on the node at
		// once, from the host and from a pod, by the reject chain (so nothing left the node).
		before := rejected(t)
		for _, addr := range []string{"10.43.255.254:80", "10.43.0.1:81"} {
			start := time.Now()
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err == nil {
				c.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "connection refused") || time.Since(start) > time.Second {
				t.Errorf("host to %s: %v after %s; want refused at once", addr, err, time.Since(start))
			}
			start = time.Now()
			out, err := s.Kubectl("exec", "client", "--", "/optest", "tcp", addr)
			if err == nil || !strings.Contains(out, "connection refused") || time.Since(start) > 3*time.Second {
				t.Errorf("pod to %s: %v after %s: %s", addr, err, time.Since(start), out)
			}
		}
		if after := rejected(t); after < before+4 {
			t.Errorf("reject chain counted %d packets, before %d: the packets went elsewhere", after, before)
		}
	})
	t.Run("LoadBalancerService", func(t *testing.T) {
		ip := s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}")
		loadBalancerChecks(t, s.Kubectl, []string{strings.TrimSpace(ip)})
	})
	t.Run("Metrics", func(t *testing.T) { metricsChecks(t, s, imgName) })
	t.Run("LocalStorage", func(t *testing.T) {
		storageChecks(t, s.Kubectl, imgName, "", filepath.Join(s.DataDir(), "storage"))
	})
	t.Run("PrivateRegistry", func(t *testing.T) { registryChecks(t, s.Kubectl, regs, "", "") })
	t.Run("HelmChart", func(t *testing.T) { helmChecks(t, s.Kubectl, s.Kubeconfig, s.DataDir(), imgName) })
	t.Run("NetworkPolicy", func(t *testing.T) { networkPolicyChecks(t, s.Kubectl, imgName, "", "", "") })
	t.Run("LogsExecPortForward", func(t *testing.T) {
		pod := firstPod(t, s, "app=web")
		if out := s.MustKubectl("logs", pod); !strings.Contains(out, "serving on :8080") {
			t.Errorf("logs = %q", out)
		}
		if out := s.MustKubectl("exec", pod, "--", "/optest", "get", "http://127.0.0.1:8080/"); !strings.Contains(out, pod) {
			t.Errorf("exec output %q does not name %s", out, pod)
		}
		pf := exec.Command(s.Bin, "kubectl", "--kubeconfig", s.Kubeconfig, "port-forward", "pod/"+pod, "18080:8080")
		pf.Stdout, pf.Stderr = os.Stderr, os.Stderr
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pf.Process.Kill(); pf.Wait() }()
		harness.Eventually(t, 30*time.Second, "port-forward answers", func() error {
			out, err := exec.Command("curl", "-sf", "http://127.0.0.1:18080/").Output()
			if err != nil || !strings.Contains(string(out), pod) {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	})
	t.Run("KilledContainerRestarted", func(t *testing.T) {
		pod := firstPod(t, s, "app=web")
		// Kill the server process inside the container from the host, as an OOM kill would.
		killContainer(t, s, pod)
		harness.Eventually(t, time.Minute, "restartCount > 0 and Ready", func() error {
			out, err := s.Kubectl("get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}")
			if err != nil {
				return err
			}
			if f := strings.Fields(out); len(f) != 2 || f[0] == "0" || f[1] != "true" {
				return fmt.Errorf("status %q", out)
			}
			return nil
		})
	})
	t.Run("DeletedPodReplaced", func(t *testing.T) {
		pod := firstPod(t, s, "app=web")
		s.MustKubectl("delete", "pod", pod, "--wait=false")
		harness.Eventually(t, time.Minute, "2 ready replicas again", func() error {
			out, err := s.Kubectl("get", "pods", "-l", "app=web", "--field-selector=status.phase=Running", "-o", "name")
			if err != nil {
				return err
			}
			names := strings.Fields(out)
			if len(names) != 2 {
				return fmt.Errorf("running: %v", names)
			}
			for _, n := range names {
				if n == "pod/"+pod {
					return fmt.Errorf("old pod still running")
				}
			}
			return nil
		})
		if out, err := s.Kubectl("wait", "--for=delete", "pod/"+pod, "--timeout=60s"); err != nil {
			t.Errorf("deleted pod not gone: %v %s", err, out)
		}
	})
	t.Run("ManifestsDirPickedUpAndReapplied", func(t *testing.T) {
		f := filepath.Join(s.DataDir(), "server", "manifests", "user.yaml")
		write := func(v string) {
			cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: user-cm, namespace: default}\ndata: {k: " + v + "}\n"
			if err := os.WriteFile(f, []byte(cm), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []string{"one", "two"} {
			write(v)
			harness.Eventually(t, 30*time.Second, "configmap from the manifests dir = "+v, func() error {
				out, err := s.Kubectl("get", "configmap", "user-cm", "-o", "jsonpath={.data.k}")
				if err != nil || out != v {
					return fmt.Errorf("%q %v", out, err)
				}
				return nil
			})
		}
	})
	t.Run("MulticallLinks", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"kubectl", "ctr"} {
			if err := os.Symlink(s.Bin, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(filepath.Join(dir, "kubectl"), "--kubeconfig", s.Kubeconfig, "get", "nodes", "-o", "name")
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "node/") {
			t.Errorf("kubectl link: %v %s", err, out)
		}
		cmd = exec.Command(filepath.Join(dir, "ctr"), "images", "ls", "-q")
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir(), "OUTPOST_RUNTIME_DIR="+s.RunDir())
		out, err = cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "docker.io/outpostk8s/pause") {
			t.Errorf("ctr link: %v %s", err, out)
		}
		// crictl talks CRI to the same containerd with no setup: it lists the running pods.
		if err := os.Symlink(s.Bin, filepath.Join(dir, "crictl")); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(filepath.Join(dir, "crictl"), "pods", "--namespace", "kube-system", "-o", "json")
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir(), "OUTPOST_RUNTIME_DIR="+s.RunDir())
		out, err = cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "coredns") {
			t.Errorf("crictl link: %v %s", err, out)
		}
		cmd = exec.Command(s.Bin, "crictl", "images", "-q")
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir(), "OUTPOST_RUNTIME_DIR="+s.RunDir())
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "sha256:") {
			t.Errorf("outpost crictl images: %v %s", err, out)
		}
		// The pinned label keeps embedded images safe from the kubelet's image GC.
		ls, _ := s.Ctr("images", "ls", "name==docker.io/outpostk8s/coredns:v1.15.0-outpost")
		if !strings.Contains(ls, "io.cri-containerd.pinned=pinned") {
			t.Errorf("coredns image not pinned:\n%s", ls)
		}
	})
	t.Run("ToolsReadConfigFile", func(t *testing.T) {
		// ctr, kubectl and token find the data dir and kubeconfig the way server and agent do.
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		body := fmt.Sprintf("data-dir: %s\nruntime-dir: %s\nwrite-kubeconfig: %s\nnode-name: 0123\n", s.DataDir(), s.RunDir(), s.Kubeconfig)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "OUTPOST_") {
				env = append(env, kv)
			}
		}
		env = append(env, "OUTPOST_CONFIG_FILE="+cfg)
		for _, args := range [][]string{{"ctr", "images", "ls", "-q"}, {"kubectl", "get", "nodes", "-o", "name"}, {"token", "list"}} {
			cmd := exec.Command(s.Bin, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("outpost %s with only the config file: %v\n%s", strings.Join(args, " "), err, out)
			} else if args[0] == "ctr" && !strings.Contains(string(out), "pause") {
				t.Errorf("ctr images ls: no pause image:\n%s", out)
			}
		}
	})
	t.Run("SecondServerRefused", func(t *testing.T) {
		out, err := exec.Command(s.Bin, s.Args...).CombinedOutput()
		code := exitCode(err)
		if code != 1 || !strings.Contains(string(out), "another outpost") || !strings.Contains(string(out), s.DataDir()) {
			t.Errorf("exit %d, output %q", code, out)
		}
	})
	t.Run("RestartKeepsObjectsAndContainers", func(t *testing.T) {
		s.MustKubectl("create", "configmap", "survivor", "--from-literal=k=v")
		if out, err := s.Kubectl("rollout", "status", "deploy/web", "--timeout=60s"); err != nil {
			t.Fatal(out, err)
		}
		before := containerIDs(t, s)
		// The first start recorded that this version's default policy is in this datastore:
		// the restart's readiness skips the hooks that re-check it.
		marker, _ := os.ReadFile(filepath.Join(s.DataDir(), "server", "db", "policy-version"))
		if m := regexp.MustCompile(`kubernetes=(\S+)`).FindStringSubmatch(s.Log()); m == nil || strings.TrimSpace(string(marker)) != m[1]+" sqlite" {
			t.Errorf("policy-version %q, want the running version (%v)", marker, m)
		}
		s.Stop()
		s.Start()
		if err := s.WaitLog("stopping", time.Second); err != nil {
			t.Fatal("the first run did not log its stop")
		}
		harness.Eventually(t, 2*time.Minute, "node Ready after restart", func() error {
			out, err := s.Kubectl("get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
			if err != nil || strings.TrimSpace(out) != "True" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
		if out := s.MustKubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}"); out != "v" {
			t.Errorf("configmap after restart: %q", out)
		}
		time.Sleep(10 * time.Second) // give the kubelet time to (wrongly) recreate anything
		after := containerIDs(t, s)
		if before != after {
			t.Errorf("container IDs changed over the restart:\nbefore %s\nafter  %s", before, after)
		}
	})
	t.Run("DisablePackaged", func(t *testing.T) {
		s.Stop()
		s.Args = append(s.Args, "--disable", "coredns", "--disable", "servicelb", "--disable", "metrics-server", "--disable", "local-storage",
			"--disable-network-policy", "--disable-helm-controller")
		s.Start()
		// The rules and address sets of the run with policies on are gone, and so is the role.
		harness.Eventually(t, time.Minute, "network policy rules removed", func() error {
			if exec.Command("iptables", "-t", "filter", "-S", "KUBE-ROUTER-FORWARD").Run() == nil {
				return fmt.Errorf("chain KUBE-ROUTER-FORWARD still there")
			}
			if out, _ := exec.Command("sh", "-c", "ipset list -n | grep -E '^KUBE-(SRC|DST)-'").Output(); len(out) > 0 {
				return fmt.Errorf("ipsets still there: %s", out)
			}
			if out, err := s.Kubectl("get", "clusterrole", "-o", "name"); err != nil || strings.Contains(out, "outpost:network-policy") {
				return fmt.Errorf("role still there: %v", err)
			}
			return nil
		})
		harness.Eventually(t, 2*time.Minute, "coredns removed", func() error {
			out, err := s.Kubectl("-n", "kube-system", "get", "deploy,svc", "-l", "k8s-app=kube-dns", "-o", "name")
			if err != nil || strings.TrimSpace(out) != "" {
				return fmt.Errorf("still there: %q %v", out, err)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(s.DataDir(), "server", "manifests", "coredns.yaml")); !os.IsNotExist(err) {
			t.Errorf("coredns.yaml still in the manifests dir: %v", err)
		}
		harness.Eventually(t, time.Minute, "local storage removed", func() error {
			out, err := s.Kubectl("get", "storageclass,deploy", "-A", "-o", "name")
			if err != nil || strings.Contains(out, "local-path") {
				return fmt.Errorf("still there: %q %v", out, err)
			}
			return nil
		})
		harness.Eventually(t, time.Minute, "metrics API removed", func() error {
			out, err := s.Kubectl("get", "apiservice", "-o", "name")
			if err != nil || strings.Contains(out, "metrics.k8s.io") {
				return fmt.Errorf("still there: %v", err)
			}
			return nil
		})
		// Without servicelb a LoadBalancer Service is left to another controller.
		s.MustKubectl("create", "service", "loadbalancer", "lb-off", "--tcp=18082:8080")
		time.Sleep(5 * time.Second)
		if out := s.MustKubectl("get", "svc", "lb-off", "-o", "jsonpath={.status.loadBalancer.ingress}"); out != "" {
			t.Errorf("--disable servicelb, yet the Service got %s", out)
		}
		// Without the helm controller a HelmChart is left alone: no finalizer, no status.
		f := filepath.Join(t.TempDir(), "unmanaged.yaml")
		os.WriteFile(f, []byte("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: unmanaged, namespace: default}\nspec: {chart: none}\n"), 0o600)
		s.MustKubectl("apply", "-f", f)
		time.Sleep(3 * time.Second)
		if out := s.MustKubectl("get", "helmchart", "unmanaged", "-o", "jsonpath={.metadata.finalizers}{.status}"); out != "" {
			t.Errorf("--disable-helm-controller, yet the HelmChart got %s", out)
		}
		s.MustKubectl("delete", "helmchart", "unmanaged")
	})
	t.Run("CertificateCheckAndRotate", func(t *testing.T) { certificateCheckAndRotate(t, s) })
	t.Run("SecretsEncryption", func(t *testing.T) { secretsEncryption(t, s) })
}
