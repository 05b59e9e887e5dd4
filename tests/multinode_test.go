package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestMultiNode: one server and two agents, each in its own network and mount namespace.
func TestMultiNode(t *testing.T) {
	c := checkedCluster(t)
	img, imgName := harness.TestImage(t)
	// The registries listen on the host's end of the test network; every node gets the file.
	regs := startRegistries(t, img, "10.99.0.1")
	// Nodes go NotReady 20 s after their last heartbeat (default 50 s); pods say how long they
	// stay on an unreachable node.
	srv, token := startServer(t, c, img, "--kube-controller-manager-arg", "node-monitor-grace-period=20s", "--private-registry", regs.file)
	agents := []*harness.Node{
		startAgentWith(t, c, img, "a1", token, []string{srv.URL()}, "--private-registry", regs.file),
		// a2 is given a server that does not exist first: it must use the one that answers.
		startAgent(t, c, img, "a2", token, "https://10.99.0.250:6443", srv.URL()),
	}
	// A third agent joins with a 1-minute token; the token is tried again after it expired at
	// the end of the test.
	ttlToken, code := nodeTokenCmd(srv, "create", "--ttl", "1m")
	if code != 0 {
		t.Fatalf("token create: %s", ttlToken)
	}
	ttlCreated := time.Now()
	// a3 is the cluster's GPU node: the NVML mock, and the NVIDIA runtime (a fake) that only it has.
	a3 := startGPUAgent(t, c, img, "a3", ttlToken, srv.URL())
	t.Run("AllNodesReady", func(t *testing.T) {
		for _, a := range append(agents, a3) {
			start := a.Started()
			waitReady(t, srv, a.Name, 3*time.Minute)
			t.Logf("agent %s Ready %.1fs after start", a.Name, time.Since(start).Seconds())
		}
		out := srv.MustKubectl("get", "nodes", "-o", "wide")
		t.Logf("\n%s", out)
	})
	t.Run("GPURuntimeClassFromAgent", func(t *testing.T) { runtimeClassChecks(t, srv, a3, imgName) })
	nodes := []string{"s1", "a1", "a2"}
	t.Run("PodNetworkAcrossNodes", func(t *testing.T) {
		var y strings.Builder
		for _, n := range nodes {
			fmt.Fprintf(&y, podYAML, "web-"+n, n, imgName)
		}
		fmt.Fprintf(&y, "---\n%s", webService)
		apply(t, srv, y.String())
		ips := map[string]string{}
		harness.Eventually(t, 2*time.Minute, "web pods running", func() error {
			for _, n := range nodes {
				out, err := srv.Kubectl("get", "pod", "web-"+n, "-o", "jsonpath={.status.phase} {.status.podIP}")
				f := strings.Fields(out)
				if err != nil || len(f) != 2 || f[0] != "Running" {
					return fmt.Errorf("web-%s: %q %v", n, out, err)
				}
				ips[n] = f[1]
			}
			return nil
		})
		for _, from := range nodes {
			for _, to := range nodes {
				harness.Eventually(t, time.Minute, from+" -> "+to, func() error {
					out, err := srv.Kubectl("exec", "web-"+from, "--", "/optest", "get", "http://"+ips[to]+":8080/")
					if err != nil || !strings.Contains(out, "hello from web-"+to) {
						return fmt.Errorf("%q %v", out, err)
					}
					return nil
				})
			}
			// Through the ClusterIP Service (kube-proxy on every node), by name (DNS from every node).
			seen := map[string]bool{}
			harness.Eventually(t, time.Minute, "service from "+from, func() error {
				out, err := srv.Kubectl("exec", "web-"+from, "--", "/optest", "get", "http://web.default.svc.cluster.local/")
				if err != nil {
					return err
				}
				seen[strings.TrimSpace(out)] = true
				if len(seen) < 2 {
					return fmt.Errorf("answers so far %v", seen)
				}
				return nil
			})
		}
	})
	t.Run("TopEveryNode", func(t *testing.T) {
		// metrics-server on the server scrapes every kubelet, verifying its certificate.
		harness.Eventually(t, 90*time.Second, "kubectl top node lists every node", func() error {
			out, err := srv.Kubectl("top", "node", "--no-headers")
			for _, n := range []string{"s1", "a1", "a2", "a3"} {
				if err != nil || !strings.Contains(out, n+" ") {
					return fmt.Errorf("no %s in %q %v", n, out, err)
				}
			}
			return nil
		})
	})
	t.Run("LocalStorageOnAgent", func(t *testing.T) {
		storageChecks(t, srv.Kubectl, imgName, "a1", filepath.Join(srv.Server.DataDir(), "storage"))
	})
	t.Run("LoadBalancerOnEveryNode", func(t *testing.T) {
		loadBalancerChecks(t, srv.Kubectl, []string{srv.IP, agents[0].IP, agents[1].IP, a3.IP})
	})
	t.Run("PrivateRegistryOnAgent", func(t *testing.T) { registryChecks(t, srv.Kubectl, regs, "a1", "-a1") })
	t.Run("NetworkPolicyAcrossNodes", func(t *testing.T) {
		// The web pod on a1, its clients on the server and on a2: every check crosses nodes.
		networkPolicyChecks(t, srv.Kubectl, imgName, "a1", "s1", "a2")
	})
	t.Run("AgentKilled", func(t *testing.T) {
		a := agents[1]
		apply(t, srv, fmt.Sprintf(spreadYAML, imgName))
		waitSpread(t, srv, "")
		a.Kill()
		killed := time.Now()
		waitCondition(t, srv, a.Name, "Unknown", 60*time.Second)
		t.Logf("%s NotReady %.1fs after SIGKILL", a.Name, time.Since(killed).Seconds())
		waitSpread(t, srv, a.Name)
		t.Logf("pods recreated off %s %.1fs after SIGKILL", a.Name, time.Since(killed).Seconds())
		a.Start()
		waitCondition(t, srv, a.Name, "True", 2*time.Minute)
	})
	t.Run("LinkDownAndUp", func(t *testing.T) {
		a := agents[0]
		a.LinkDown()
		linked := false
		defer func() {
			if !linked {
				a.LinkUp()
			}
		}()
		down := time.Now()
		waitCondition(t, srv, a.Name, "Unknown", 60*time.Second)
		t.Logf("%s NotReady %.1fs after its link went down", a.Name, time.Since(down).Seconds())
		waitSpread(t, srv, a.Name)
		a.LinkUp()
		linked = true
		waitCondition(t, srv, a.Name, "True", 2*time.Minute)
	})
	t.Run("ServerDown30s", func(t *testing.T) {
		// The agents' pods keep talking while the server is away; kubectl cannot reach them,
		// so the check runs in the container through the node's own containerd.
		ip2 := strings.TrimSpace(srv.MustKubectl("get", "pod", "web-a2", "-o", "jsonpath={.status.podIP}"))
		srv.Stop()
		stopped := time.Now()
		// An agent that restarts meanwhile (power came back to it first) starts on the
		// credentials of its last join.
		a1 := agents[0]
		a1.Stop()
		before := len(a1.Log())
		a1.Start()
		if err := a1.WaitLog("starting on the credentials of the last join", time.Minute); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, time.Minute, "a1 containerd back", func() error {
			_, err := podExec(a1, "web-a1", "/optest", "env", "HOSTNAME")
			return err
		})
		if !strings.Contains(a1.Log()[before:], "starting outpost agent") || a1.Exited() {
			t.Fatalf("a1 did not come back without a server:\n%s", a1.Log()[before:])
		}
		for time.Since(stopped) < 30*time.Second {
			if out, err := podExec(agents[0], "web-a1", "/optest", "get", "http://"+ip2+":8080/"); err != nil || !strings.Contains(out, "hello from web-a2") {
				t.Errorf("a1 -> a2 with the server down: %q %v", out, err)
				break
			}
			time.Sleep(5 * time.Second)
		}
		srv.Start()
		for _, n := range nodes {
			waitCondition(t, srv, n, "True", 3*time.Minute)
		}
		if strings.Count(agents[1].Log(), "starting outpost agent") > 2 || agents[1].Exited() {
			t.Errorf("a2 restarted or exited while the server was down")
		}
	})
	t.Run("ExpiredTokenRefused", func(t *testing.T) {
		time.Sleep(time.Until(ttlCreated.Add(time.Minute + time.Second)))
		a3.Stop()
		out, code := tryJoin(t, c, srv, ttlToken, "a4")
		if code != 1 || !strings.Contains(out, "expired token") {
			t.Errorf("join with an expired token: exit %d: %s", code, out)
		}
	})
	t.Run("ExpiredTokenAgentRestarts", func(t *testing.T) {
		// a3 joined with the now expired token: it renews with its node credentials.
		before := len(a3.Log())
		a3.Start()
		harness.Eventually(t, 2*time.Minute, "a3 ready again", func() error {
			if log := a3.Log()[before:]; !strings.Contains(log, "Outpost agent is ready") {
				return fmt.Errorf("no ready line since the restart; log since:\n%s", log[max(0, len(log)-3000):])
			}
			return nil
		})
		if log := a3.Log()[before:]; !strings.Contains(log, "renewed this node's certificates with its own credentials") || strings.Contains(log, "starting on the credentials of the last join") {
			t.Errorf("a3 did not renew with its credentials:\n%s", log)
		}
		waitCondition(t, srv, "a3", "True", time.Minute)
	})
	t.Run("ServerNodeNameRefused", func(t *testing.T) {
		out, code := tryJoin(t, c, srv, token, "s1")
		if code != 1 || !strings.Contains(out, `node name "s1" is the server's own node`) {
			t.Errorf("join as the server's node: exit %d: %s", code, out)
		}
	})
	t.Run("NodeDeleteFreesName", func(t *testing.T) {
		a3.Stop()
		srv.MustKubectl("delete", "node", "a3")
		harness.Eventually(t, 30*time.Second, "a3's node password removed", func() error {
			if out, err := srv.Kubectl("-n", "kube-system", "get", "secret", "a3.node-password.outpost"); err == nil {
				return fmt.Errorf("still there: %s", out)
			}
			return nil
		})
		// The deleted node's credentials renew no more: a3 (whose token expired) is out.
		before := len(a3.Log())
		a3.Start()
		if err := a3.WaitExit(time.Minute); err != nil {
			t.Fatal(err)
		}
		if log := a3.Log()[before:]; !strings.Contains(log, "it was deleted; join it again with a token") {
			t.Errorf("a3 after its node was deleted:\n%s", log)
		}
	})
	t.Run("TokenRotate", func(t *testing.T) {
		out, err := exec.Command(c.Bin, "token", "rotate", "--data-dir", srv.DataDir(), "--runtime-dir", srv.RunDir(),
			"--config", filepath.Join(c.Root, "s1", "config.yaml")).Output()
		rotated := strings.TrimSpace(string(out))
		if err != nil || !strings.HasPrefix(rotated, "OP10") || rotated == token {
			t.Fatalf("token rotate: %v %q", err, out)
		}
		if out, code := tryJoin(t, c, srv, token, "a5"); code != 1 || !strings.Contains(out, "wrong token") {
			t.Errorf("join with the old cluster token: exit %d: %s", code, out)
		}
		// The new token is accepted: the join gets as far as the node name.
		if out, code := tryJoin(t, c, srv, rotated, "s1"); code != 1 || !strings.Contains(out, "server's own node") {
			t.Errorf("join with the new cluster token: exit %d: %s", code, out)
		}
	})
	t.Run("AgentRestartRejoins", func(t *testing.T) {
		// a1 was given the cluster token that TokenRotate replaced.
		a := agents[0]
		a.Stop()
		before := len(a.Log())
		a.Start()
		harness.Eventually(t, 2*time.Minute, "agent ready again", func() error {
			if !strings.Contains(a.Log()[before:], "Outpost agent is ready") {
				return fmt.Errorf("no ready line since the restart")
			}
			return nil
		})
	})
}

// tryJoin runs `outpost agent` on the host (reaching the server over the test bridge) with a
// fresh data dir; a refused join returns at once.
func tryJoin(t *testing.T, c *harness.Cluster, srv *harness.Node, token, name string) (string, int) {
	t.Helper()
	out, err := exec.Command(c.Bin, "agent", "--server", srv.URL(), "--token", token, "--node-name", name,
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--config", filepath.Join(c.Root, "s1", "config.yaml"),
		"--node-password-file", filepath.Join(t.TempDir(), "pw")).CombinedOutput()
	return strings.TrimSpace(string(out)), exitCode(err)
}

// waitCondition waits for node's Ready condition to have status (True, False, Unknown).
func waitCondition(t *testing.T, srv *harness.Node, node, status string, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "node "+node+" Ready="+status, func() error {
		out, err := srv.Kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil || strings.TrimSpace(out) != status {
			return fmt.Errorf("ready=%q %v", out, err)
		}
		return nil
	})
}

// waitSpread waits until the spread Deployment has 3 running pods, none on node avoid.
func waitSpread(t *testing.T, srv *harness.Node, avoid string) {
	t.Helper()
	harness.Eventually(t, 2*time.Minute, "3 spread pods off "+avoid, func() error {
		out, err := srv.Kubectl("get", "pods", "-l", "app=spread", "-o",
			`jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.deletionTimestamp}/{.spec.nodeName} {end}`)
		if err != nil {
			return err
		}
		n := 0
		for _, f := range strings.Fields(out) {
			del, node, _ := strings.Cut(f, "/")
			if del == "" && node != avoid {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d good of %q", n, out)
		}
		return nil
	})
}

// podExec runs a command in a pod's container through the node's containerd (no apiserver).
func podExec(n *harness.Node, pod string, args ...string) (string, error) {
	ids, err := n.Ctr("-n", "k8s.io", "containers", "ls", "-q", `labels."io.kubernetes.pod.name"==`+pod+`,labels."io.kubernetes.container.name"==web`)
	if err != nil {
		return ids, err
	}
	f := strings.Fields(ids)
	if len(f) == 0 {
		return "", fmt.Errorf("no container of %s on %s", pod, n.Name)
	}
	return n.Ctr(append([]string{"-n", "k8s.io", "tasks", "exec", "--exec-id", fmt.Sprintf("t%d", time.Now().UnixNano()), f[len(f)-1]}, args...)...)
}

// nodeTokenCmd runs `outpost token` in the server's network namespace (its admin kubeconfig
// names 127.0.0.1).
func nodeTokenCmd(srv *harness.Node, args ...string) (string, int) {
	full := append([]string{srv.Bin, "token", args[0], "--kubeconfig", srv.Kubeconfig}, args[1:]...)
	out, err := srv.Exec(full...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	code := 0
	if err != nil {
		code = 1
	}
	return lines[len(lines)-1], code
}

func waitReady(t *testing.T, srv *harness.Node, node string, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "node "+node+" Ready", func() error {
		out, err := srv.Kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil || strings.TrimSpace(out) != "True" {
			return fmt.Errorf("ready=%q %v", out, err)
		}
		return nil
	})
}

// waitRenewed waits until node's Lease, read through srv, was renewed after since: the
// node's heartbeat reaches the datastore through srv's API.
func waitRenewed(t *testing.T, srv *harness.Node, node string, since time.Time, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, node+" heartbeats through "+srv.Name, func() error {
		out, err := srv.Kubectl("-n", "kube-node-lease", "get", "lease", node, "-o", "jsonpath={.spec.renewTime}")
		if err != nil {
			return err
		}
		if renewed, err := time.Parse(time.RFC3339Nano, out); err != nil || !renewed.After(since) {
			return fmt.Errorf("renewTime %q", out)
		}
		return nil
	})
}

// checkedCluster is a cluster whose cleanup must leave nothing behind.
func checkedCluster(t *testing.T) *harness.Cluster {
	var c *harness.Cluster
	t.Cleanup(func() { // runs after the cluster's own cleanup
		if left := c.ClusterLeftovers(); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
	c = harness.NewCluster(t)
	return c
}

// startServer starts node s1 as the server, waits until it is Ready and returns its token.
func startServer(t *testing.T, c *harness.Cluster, img string, args ...string) (*harness.Node, string) {
	t.Helper()
	srv := c.AddNode("s1", "server", args...)
	withImage(t, srv, img)
	srv.Start()
	waitReady(t, srv, "s1", 3*time.Minute)
	b, err := os.ReadFile(filepath.Join(srv.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, strings.TrimSpace(string(b))
}

// startAgent starts an agent joining through servers (in order) with token.
func startAgent(t *testing.T, c *harness.Cluster, img, name, token string, servers ...string) *harness.Node {
	t.Helper()
	return startAgentWith(t, c, img, name, token, servers)
}

// startAgentWith starts an agent with extra flags.
func startAgentWith(t *testing.T, c *harness.Cluster, img, name, token string, servers []string, extra ...string) *harness.Node {
	t.Helper()
	args := append([]string{"--token", token, "--node-password-file", filepath.Join(c.Root, name, "node-password")}, extra...)
	for _, s := range servers {
		args = append(args, "--server", s)
	}
	a := c.AddNode(name, "agent", args...)
	withImage(t, a, img)
	a.Start()
	return a
}

// startGPUAgent starts an agent on the NVML mock (8 x A100, fake device nodes) with a fake
// nvidia-container-runtime on its PATH: a script that notes each call and runs the payload's
// runc, so pods of the nvidia RuntimeClass really run through it.
func startGPUAgent(t *testing.T, c *harness.Cluster, img, name, token, server string) *harness.Node {
	t.Helper()
	gpuRoot := filepath.Join(c.Root, name+"-gpu")
	devRoot, driverRoot := fakeGPUHost(t, gpuRoot)
	a := c.AddNode(name, "agent", "--token", token, "--node-password-file", filepath.Join(c.Root, name, "node-password"),
		"--server", server, "--gpu-mode", "auto", "--gpu-mock", "dgxa100", "--gpu-dev-root", devRoot, "--gpu-driver-root", driverRoot)
	toolkit := filepath.Join(gpuRoot, "toolkit")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%s\nexec %s \"$@\"\n",
		filepath.Join(gpuRoot, "runtime-calls"), filepath.Join(a.DataDir(), "data", "current", "bin", "runc"))
	if err := os.MkdirAll(toolkit, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(toolkit, "nvidia-container-runtime"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Env = []string{"PATH=" + toolkit + ":" + os.Getenv("PATH")}
	withImage(t, a, img)
	a.Start()
	return a
}

// runtimeClassChecks: the GPU agent's runtime, which the server's own node lacks, leads the
// servers to the nvidia RuntimeClass, whose pods land on that agent and run through it.
func runtimeClassChecks(t *testing.T, srv, gpuNode *harness.Node, imgName string) {
	harness.Eventually(t, time.Minute, "RuntimeClass nvidia with its node selector", func() error {
		out, err := srv.Kubectl("get", "runtimeclass", "-o", "jsonpath={range .items[*]}{.metadata.name}={.handler}={.scheduling.nodeSelector}{\"\\n\"}{end}")
		if err != nil || strings.TrimSpace(out) != `nvidia=nvidia={"runtime.outpost.io/nvidia":"true"}` {
			return fmt.Errorf("runtimeclasses %q %v", out, err)
		}
		return nil
	})
	labelled := strings.Fields(srv.MustKubectl("get", "nodes", "-l", "runtime.outpost.io/nvidia=true", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(labelled) != 1 || labelled[0] != gpuNode.Name {
		t.Errorf("nodes with the runtime label: %v, want only %s", labelled, gpuNode.Name)
	}
	apply(t, srv, gpuPodYAML("cuda", imgName, "nvidia", 1))
	defer srv.Kubectl("delete", "pod", "cuda", "--wait=false")
	if out, err := srv.Kubectl("wait", "--for=condition=Ready", "pod/cuda", "--timeout=2m"); err != nil {
		t.Fatal(out, err)
	}
	if on := srv.MustKubectl("get", "pod", "cuda", "-o", "jsonpath={.spec.nodeName}"); on != gpuNode.Name {
		t.Errorf("pod of the nvidia RuntimeClass on %q, want %s", on, gpuNode.Name)
	}
	calls, _ := os.ReadFile(filepath.Join(filepath.Dir(gpuNode.Root), gpuNode.Name+"-gpu", "runtime-calls"))
	if !strings.Contains(string(calls), "create") {
		t.Errorf("the nvidia runtime was not called to create the container: %q", calls)
	}
}

// withImage puts the test image where the node imports it at start.
func withImage(t *testing.T, n *harness.Node, img string) {
	if err := os.MkdirAll(filepath.Join(n.DataDir(), "agent", "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, img, filepath.Join(n.DataDir(), "agent", "images", "optest.tar"))
}

func apply(t *testing.T, srv *harness.Node, y string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.MustKubectl("apply", "-f", f)
}

const podYAML = `---
apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {app: web}}
spec:
  nodeName: %s
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    args: ["serve"]
`

const webService = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

const spreadYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: spread}}}
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        args: ["serve"]
`

// TestMultiNodeHostGW: the host-gw backend (routes, no encapsulation) links the pod subnets of
// nodes on one L2 segment, and agents take the backend from the server.
func TestMultiNodeHostGW(t *testing.T) {
	c := checkedCluster(t)
	img, imgName := harness.TestImage(t)
	srv, token := startServer(t, c, img, "--flannel-backend", "host-gw")
	a := startAgent(t, c, img, "a1", token, srv.URL())
	waitReady(t, srv, "a1", 3*time.Minute)
	apply(t, srv, fmt.Sprintf(podYAML, "web-s1", "s1", imgName)+fmt.Sprintf(podYAML, "web-a1", "a1", imgName))
	var ip string
	harness.Eventually(t, 2*time.Minute, "web pods running", func() error {
		out, err := srv.Kubectl("get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}={.status.podIP} {end}`)
		if err != nil || strings.Count(out, "=Running=") != 2 {
			return fmt.Errorf("%q %v", out, err)
		}
		for _, f := range strings.Fields(out) {
			if p := strings.Split(f, "="); p[0] == "web-a1" {
				ip = p[2]
			}
		}
		return nil
	})
	harness.Eventually(t, time.Minute, "s1 pod -> a1 pod", func() error {
		out, err := srv.Kubectl("exec", "web-s1", "--", "/optest", "get", "http://"+ip+":8080/")
		if err != nil || !strings.Contains(out, "hello from web-a1") {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	if !strings.Contains(a.Log(), "backend=host-gw") {
		t.Error("agent did not take host-gw from the server")
	}
	if out, _ := a.Exec("ip", "route"); !strings.Contains(out, "via "+srv.IP) {
		t.Errorf("no route to the server's pod subnet via %s:\n%s", srv.IP, out)
	}
}
