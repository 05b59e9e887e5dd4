package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a multi-node test on one machine: each node runs in its own network namespace,
// plugged by a veth into one bridge in the host namespace, and its own mount namespace with
// private kubelet, CNI, pod-log and netns dirs, and its own kubelet cgroup root.
type Cluster struct {
	T      testing.TB
	Bin    string
	Root   string
	Bridge string
	Nodes  []*Node

	cgroups  []string
	hostDirs []string
}

// Subnet of the test network; the host's end of the bridge is .1.
const clusterNet = "10.99.0."

// nodeDirs are shared host paths a node must not share with the others (fixed by upstream).
var nodeDirs = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/run/netns", "/var/run/cdi"}

// NewCluster makes the bridge; nodes are added with AddNode.
func NewCluster(t testing.TB) *Cluster {
	root, err := os.MkdirTemp("", "outpost-mn-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{T: t, Bin: Bin(t), Root: root, Bridge: "optbr0"}
	removeStale(c.Bridge)
	for _, d := range nodeDirs {
		if _, err := os.Lstat(d); os.IsNotExist(err) {
			c.hostDirs = append(c.hostDirs, d)
		}
	}
	t.Cleanup(c.Cleanup)
	c.must("ip", "link", "add", c.Bridge, "type", "bridge")
	c.must("ip", "addr", "add", clusterNet+"1/24", "dev", c.Bridge)
	c.must("ip", "link", "set", c.Bridge, "up")
	return c
}

func (c *Cluster) must(args ...string) {
	c.T.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		c.T.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Node is one machine of a Cluster.
type Node struct {
	*Server
	Name string
	IP   string
	NS   string
	// Hostname is the node's host name (its Name unless set before Start): machines cloned
	// from one image share one.
	Hostname string
	c        *Cluster
}

// AddNode prepares (does not start) a node running `outpost <role> args...`.
func (c *Cluster) AddNode(name, role string, args ...string) *Node {
	c.T.Helper()
	n := &Node{Name: name, Hostname: name, IP: fmt.Sprintf("%s%d", clusterNet, 10+len(c.Nodes)), NS: "opt-" + name, c: c}
	root := filepath.Join(c.Root, name)
	if err := os.MkdirAll(root, 0o700); err != nil {
		c.T.Fatal(err)
	}
	n.Server = &Server{T: c.T, Bin: c.Bin, Root: root}
	c.Nodes = append(c.Nodes, n) // cleaned up even if the rest fails
	c.must("ip", "netns", "add", n.NS)
	host := "optv-" + name
	c.must("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.NS)
	c.must("ip", "link", "set", host, "master", c.Bridge, "up")
	c.must("ip", "-n", n.NS, "addr", "add", n.IP+"/24", "dev", "eth0")
	c.must("ip", "-n", n.NS, "link", "set", "eth0", "up")
	c.must("ip", "-n", n.NS, "link", "set", "lo", "up")
	c.must("ip", "-n", n.NS, "route", "add", "default", "via", clusterNet+"1")
	cg := "/" + n.NS
	c.makeCgroup(cg)
	conf := filepath.Join(root, "config.yaml")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		c.T.Fatal(err)
	}
	n.Server.Kubeconfig, n.Server.LogPath = filepath.Join(root, "admin.yaml"), filepath.Join(root, role+".log")
	n.Server.Args = append([]string{role, "--data-dir", n.DataDir(), "--runtime-dir", n.RunDir(),
		"--node-name", name, "--node-ip", n.IP, "--config", conf, "--gpu-mode", "off",
		"--kubelet-arg", "cgroup-root=" + cg}, args...)
	if role == "server" {
		n.Server.Args = append(n.Server.Args, "--write-kubeconfig", n.Kubeconfig, "--node-password-file", filepath.Join(root, "node-password"))
	}
	// The node's own hostname and view of the shared dirs, then the binary, all in the node's
	// namespaces. Machines have hostnames of their own: kube-apiserver names its identity Lease
	// after the hostname, and servers sharing one fight over a single Lease.
	script := `set -e; hostname "$H"; for d in ` + strings.Join(nodeDirs, " ") + `; do mkdir -p "$R$d" "$d"; mount --bind "$R$d" "$d"; done; exec "$@"`
	n.Server.Wrap = func(bin string, args []string) *exec.Cmd {
		cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.NS, "--", "unshare", "-m", "-u", "--propagation", "private",
			"--", "sh", "-c", script, "sh", bin}, args...)...)
		cmd.Env = append(os.Environ(), "R="+filepath.Join(root, "fs"), "H="+n.Hostname)
		return cmd
	}
	return n
}

// URL is the node's apiserver address as other nodes see it.
func (n *Node) URL() string { return "https://" + n.IP + ":6443" }

// Kubectl on a server node, reaching its apiserver through the test network.
func (n *Node) Kubectl(args ...string) (string, error) {
	return n.Server.Kubectl(append([]string{"--server", n.URL()}, args...)...)
}

// LoopbackReadyz is the node's own /readyz?verbose, asked inside its network namespace over
// loopback: it answers when the node's address does not (a server that has not served yet).
func (n *Node) LoopbackReadyz() string {
	out, err := n.Exec("env", "OUTPOST_DATA_DIR="+n.DataDir(), n.Bin, "kubectl", "--kubeconfig", n.Kubeconfig,
		"--server", "https://127.0.0.1:6443", "--request-timeout", "10s", "get", "--raw", "/readyz?verbose")
	if err != nil {
		return fmt.Sprintf("%s(%v)", out, err)
	}
	return out
}

// MustKubectl is Kubectl that fails the test on error.
func (n *Node) MustKubectl(args ...string) string {
	n.T.Helper()
	out, err := n.Kubectl(args...)
	if err != nil {
		n.T.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// LinkDown cuts the node off the test network; LinkUp plugs it back.
func (n *Node) LinkDown() { n.c.must("ip", "link", "set", "optv-"+n.Name, "down") }
func (n *Node) LinkUp()   { n.c.must("ip", "link", "set", "optv-"+n.Name, "up") }

// Exec runs a command inside the node's network namespace.
func (n *Node) Exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.NS}, args...)...).CombinedOutput()
	return string(out), err
}

// makeCgroup creates the kubelet's cgroup root in every hierarchy (v1) or the unified one.
func (c *Cluster) makeCgroup(cg string) {
	dirs := []string{"/sys/fs/cgroup" + cg}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil { // v1
		dirs = nil
		ents, _ := os.ReadDir("/sys/fs/cgroup")
		for _, e := range ents {
			p := filepath.Join("/sys/fs/cgroup", e.Name())
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				dirs = append(dirs, p+cg)
			}
		}
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			continue // a hierarchy that refuses children is not one the kubelet needs
		}
		c.cgroups = append(c.cgroups, d)
		if strings.Contains(d, "/cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, _ := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				_ = os.WriteFile(filepath.Join(d, f), b, 0o644)
			}
		}
	}
}

// Cleanup kills every node's processes (pods too), then removes the namespaces, the bridge,
// the cgroups and the host dirs the nodes created.
func (c *Cluster) Cleanup() {
	if c.T.Failed() { // what each node was doing when the test gave up on it
		c.T.Log(c.Report())
	}
	for _, n := range c.Nodes {
		n.Stop()
	}
	for _, n := range c.Nodes {
		for i := 0; i < 3; i++ {
			out, _ := exec.Command("ip", "netns", "pids", n.NS).Output()
			pids := strings.Fields(string(out))
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				var pid int
				fmt.Sscanf(p, "%d", &pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(300 * time.Millisecond)
		}
		KillUnder(n.Root)
		killCgroups(c.cgroups)
		Unmount(n.Root)
		_ = exec.Command("ip", "netns", "del", n.NS).Run()
		_ = exec.Command("ip", "link", "del", "optv-"+n.Name).Run() // the kernel frees it lazily
	}
	_ = exec.Command("ip", "link", "del", c.Bridge).Run()
	removeCgroups(c.cgroups)
	for _, d := range c.hostDirs {
		os.RemoveAll(d)
	}
	if os.Getenv("OUTPOST_KEEP") == "" {
		os.RemoveAll(c.Root)
	}
}

// killCgroups SIGKILLs every process left in the trees: pods whose shim is gone (their pause
// process is in neither the node's network namespace nor under its root).
func killCgroups(roots []string) {
	for i := 0; i < 5; i++ {
		found := false
		for _, r := range roots {
			filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					var pid int
					fmt.Sscanf(f, "%d", &pid)
					if pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
						found = true
					}
				}
				return nil
			})
		}
		if !found {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// removeStale clears what a killed earlier run (a test timeout) left: its namespaces with
// their processes, its bridge, its cgroups.
func removeStale(bridge string) {
	stale, _ := filepath.Glob("/run/netns/opt-*")
	for _, ns := range stale {
		out, _ := exec.Command("ip", "netns", "pids", filepath.Base(ns)).Output()
		for _, p := range strings.Fields(string(out)) {
			var pid int
			fmt.Sscanf(p, "%d", &pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/opt-*")
	if v2, _ := filepath.Glob("/sys/fs/cgroup/opt-*"); len(v2) > 0 {
		cgs = append(cgs, v2...)
	}
	killCgroups(cgs)
	time.Sleep(300 * time.Millisecond)
	for _, ns := range stale {
		_ = exec.Command("ip", "netns", "del", filepath.Base(ns)).Run()
		_ = exec.Command("ip", "link", "del", "optv-"+strings.TrimPrefix(filepath.Base(ns), "opt-")).Run()
	}
	_ = exec.Command("ip", "link", "del", bridge).Run()
	removeCgroups(cgs)
}

// removeCgroups removes the trees deepest first (cgroup dirs go with rmdir only).
func removeCgroups(roots []string) {
	for _, r := range roots {
		var dirs []string
		filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			for i := 0; i < 20 && syscall.Rmdir(d) == syscall.EBUSY; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// ClusterLeftovers lists what a cleaned-up cluster left: namespaces, links, cgroups.
func (c *Cluster) ClusterLeftovers() []string {
	var left []string
	for _, n := range c.Nodes {
		if _, err := os.Stat("/run/netns/" + n.NS); err == nil {
			left = append(left, "netns "+n.NS)
		}
	}
	if exec.Command("ip", "link", "show", c.Bridge).Run() == nil {
		left = append(left, "link "+c.Bridge)
	}
	for _, d := range c.cgroups {
		if _, err := os.Stat(d); err == nil {
			left = append(left, "cgroup "+d)
		}
	}
	return left
}

// Report is, for every node, whether its process runs or how it ended, and its log's last
// lines that are not INFO: a test that finds a node not answering prints it.
func (c *Cluster) Report() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		n.mu.Lock()
		started := n.cmd != nil
		n.mu.Unlock()
		state := "running"
		if !started {
			state = "not running"
		} else if n.Exited() {
			state = "ended: " + endedHow(n.ExitErr())
		}
		fmt.Fprintf(&b, "--- %s (%s, log %s): %s\n", n.Name, n.IP, n.LogPath, state)
		var bad []string
		for _, l := range strings.Split(n.Log(), "\n") {
			if l != "" && !strings.Contains(l, " INFO ") {
				bad = append(bad, l)
			}
		}
		if len(bad) > 15 {
			bad = bad[len(bad)-15:]
		}
		for _, l := range bad {
			if len(l) > 300 {
				l = l[:300] + " …"
			}
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}
