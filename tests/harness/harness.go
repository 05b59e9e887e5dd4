// Package harness starts the real outpost binary as root on a temp data dir, drives it with
// its own kubectl, and removes every process, mount, interface and iptables rule it made.
// Integration and multi-node tests share it.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin is the binary under test (OUTPOST_BIN, set by `make integration`).
func Bin(t testing.TB) string {
	t.Helper()
	b := os.Getenv("OUTPOST_BIN")
	if b == "" {
		t.Skip("OUTPOST_BIN is not set: run `make integration` (as root)")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root")
	}
	return b
}

// TestImage is the archive of the project's test image and its name.
func TestImage(t testing.TB) (path, name string) {
	dir := os.Getenv("OUTPOST_TEST_IMAGES")
	if dir == "" {
		t.Fatal("OUTPOST_TEST_IMAGES is not set: run `make integration`")
	}
	return filepath.Join(dir, "optest.tar"), "docker.io/outpostk8s/optest:dev"
}

// Server is one outpost server process on its own data dir.
type Server struct {
	T          testing.TB
	Bin        string
	Root       string // temp root: data, run, kubelet, kubeconfig, log
	Args       []string
	Kubeconfig string
	LogPath    string
	// Wrap, when set, builds the command (a multi-node test runs it in the node's namespaces).
	Wrap func(bin string, args []string) *exec.Cmd
	// Env is added to the process's environment.
	Env []string
	// Unpack leaves unpacking the payload to the outer binary, as on a new machine, instead
	// of seeding the data dir with the run's shared copy (Seed).
	Unpack bool

	hostDirs []string
	netns    map[string]bool // /run/netns entries before the start: pod netns after are ours
	vxlan    bool            // flannel.1 is the server's to remove (it was not there before)

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	started time.Time
}

// NewServer prepares (does not start) a server whose every path lives under a temp dir.
func NewServer(t testing.TB, extra ...string) *Server {
	root, err := os.MkdirTemp("", "outpost-it-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{T: t, Bin: Bin(t), Root: root, Kubeconfig: filepath.Join(root, "admin.yaml"),
		LogPath: filepath.Join(root, "server.log")}
	s.Args = append([]string{"server",
		"--data-dir", s.DataDir(), "--runtime-dir", s.RunDir(),
		"--write-kubeconfig", s.Kubeconfig, "--config", filepath.Join(root, "config.yaml"),
		"--node-password-file", filepath.Join(root, "node-password"),
		"--kubelet-arg", "root-dir=" + filepath.Join(root, "kubelet"),
	}, extra...)
	if err := os.WriteFile(filepath.Join(root, "config.yaml"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range HostDirs {
		if _, err := os.Lstat(d); os.IsNotExist(err) {
			s.hostDirs = append(s.hostDirs, d)
		}
	}
	_, err = os.Stat("/sys/class/net/flannel.1")
	s.vxlan = os.IsNotExist(err)
	s.netns = map[string]bool{}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		s.netns[e.Name()] = true
	}
	// What earlier servers' pods left on the host: this server's kubelet would clean it up a
	// minute in, with an ERROR per container it cannot find.
	CleanPodCgroups(0)
	CleanPodLogs()
	// The device manager's checkpoint sits in the one dir every kubelet's device plugins use
	// (/var/lib/kubelet/device-plugins, whatever --root-dir): an earlier server's lists
	// resources (a MIG profile) this one's kubelet would advertise at zero.
	os.Remove("/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint")
	return s
}

// removePodNetns unmounts and removes the pod network namespaces containerd bound under
// /run/netns (pods killed, not stopped, leave them).
func (s *Server) removePodNetns() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if s.netns[e.Name()] || !strings.HasPrefix(e.Name(), "cni-") {
			continue
		}
		p := filepath.Join("/run/netns", e.Name())
		for i := 0; i < 3 && syscall.Unmount(p, syscall.MNT_DETACH) == nil; i++ {
		}
		_ = os.Remove(p)
	}
}

// HostDirs are the host paths a node writes outside its data dir (kubelet's pod logs and
// device-plugin dir, CNI's result cache, the CDI spec dir); a test removes the ones it created.
var HostDirs = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/var/run/cdi"}

func (s *Server) DataDir() string { return filepath.Join(s.Root, "data") }
func (s *Server) RunDir() string  { return filepath.Join(s.Root, "run") }

// Start launches the server; output is appended to LogPath.
func (s *Server) Start() {
	s.T.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.T.Fatal(err)
	}
	if !s.Unpack {
		Seed(s.T, s.Bin, s.DataDir())
	}
	cmd := exec.Command(s.Bin, s.Args...)
	if s.Wrap != nil {
		cmd = s.Wrap(s.Bin, s.Args)
	}
	if len(s.Env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, s.Env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.T.Fatal(err)
	}
	s.cmd, s.exited, s.started = cmd, make(chan struct{}), time.Now()
	go func(c *exec.Cmd, done chan struct{}) {
		err := c.Wait()
		// The log says how the process ended: a SIGKILL from outside leaves no line of its own.
		fmt.Fprintf(f, "[harness] process ended: %s\n", endedHow(err))
		f.Close()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(done)
	}(cmd, s.exited)
}

// Started is when the last Start ran.
func (s *Server) Started() time.Time { return s.started }

// Stop sends SIGTERM and waits for the process to end.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// Kill SIGKILLs the outpost process only: its containerd and pods run on, as when it crashes.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// ExitErr is how the last run ended (nil: exit 0), once it has.
func (s *Server) ExitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// WaitExit waits for the process to end on its own (a refused start).
func (s *Server) WaitExit(timeout time.Duration) error {
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s:\n%s", timeout, tail(s.Log(), 20))
	}
}

// Log returns the server's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// WaitLog waits for a line containing substr.
func (s *Server) WaitLog(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.Log(), substr) {
			return nil
		}
		if s.Exited() {
			return fmt.Errorf("server exited before logging %q:\n%s", substr, tail(s.Log(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no %q in the log after %s:\n%s", substr, timeout, tail(s.Log(), 40))
}

// Kubectl runs the bundled kubectl against this server.
func (s *Server) Kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Bin, append([]string{"kubectl", "--kubeconfig", s.Kubeconfig}, args...)...)
	// The outer binary runs the payload unpacked in this server's data dir.
	cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// Ctr runs the bundled ctr against this server's containerd.
func (s *Server) Ctr(args ...string) (string, error) {
	cmd := exec.Command(s.Bin, append([]string{"ctr"}, args...)...)
	cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+s.DataDir(), "OUTPOST_RUNTIME_DIR="+s.RunDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustKubectl fails the test on error.
func (s *Server) MustKubectl(args ...string) string {
	s.T.Helper()
	out, err := s.Kubectl(args...)
	if err != nil {
		s.T.Fatal(err)
	}
	return out
}

// Eventually retries f until it returns nil or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Cleanup stops the server and removes what it left on the host: pods' processes, mounts,
// the pod bridge, iptables rules, and the temp root.
func (s *Server) Cleanup() {
	s.Stop()
	KillUnder(s.Root)
	Unmount(s.Root)
	if s.netns != nil {
		s.removePodNetns()
	}
	CleanPodCgroups(3 * time.Second)
	CleanPodLogs()
	CleanNetwork()
	if s.vxlan {
		_ = exec.Command("ip", "link", "delete", "flannel.1").Run()
	}
	for _, d := range s.hostDirs {
		Unmount(d)
		os.RemoveAll(d)
	}
	if os.Getenv("OUTPOST_KEEP") == "" {
		os.RemoveAll(s.Root)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// KillUnder SIGKILLs every process whose executable or cwd lies under root (containerd,
// shims) and every container process of those shims.
func KillUnder(root string) {
	for i := 0; i < 3; i++ {
		var pids []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			var pid int
			if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() || pid == os.Getppid() {
				continue
			}
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.HasPrefix(exe, root) || bytes.Contains(cmdline, []byte(root)) {
				pids = append(pids, pid)
				pids = append(pids, children(pid)...)
			}
		}
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var p int
		if _, err := fmt.Sscanf(e.Name(), "%d", &p); err != nil {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		// pid (comm) state ppid ...
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			f := strings.Fields(string(stat[i+1:]))
			if len(f) > 1 && f[1] == fmt.Sprint(pid) {
				out = append(out, p)
				out = append(out, children(p)...)
			}
		}
	}
	return out
}

// Unmount removes every mount under root, deepest first.
func Unmount(root string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], root) {
			mounts = append(mounts, fields[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// CleanPodCgroups removes the pod cgroups (under kubepods, in every hierarchy) that a stopped
// cluster's killed pods left: the next cluster's kubelet would find them and clean up those
// pods it never knew, with an ERROR line for each container (an idle server's quiet minute).
// Only empty cgroups go: one a live process holds stays. A killed pod's cgroup frees a moment
// after its last process ends: wait retries that long.
func CleanPodCgroups(wait time.Duration) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	var dirs []string
	for _, root := range roots {
		// Pods' dirs and their containers' only: the QoS dirs (burstable, besteffort) are a
		// running kubelet's, made once at its start.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.Contains(p, "/pod") {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	deadline := time.Now().Add(wait)
	for {
		left := 0
		for i := len(dirs) - 1; i >= 0; i-- { // children first
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// CleanPodLogs removes the pod logs (/var/log/pods) and their links (/var/log/containers)
// that stopped servers' pods left: the kubelet's log GC, a minute after its start, removes the
// dirs of pods it does not run, then asks the runtime about each link's container and logs an
// ERROR for one it never knew (kubernetes#63336). Single servers run one at a time, so what is
// there when one starts or is cleaned up is no live pod's.
func CleanPodLogs() {
	dirs, _ := os.ReadDir("/var/log/pods")
	for _, d := range dirs {
		os.RemoveAll(filepath.Join("/var/log/pods", d.Name()))
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		os.Remove(l)
	}
}

// CleanNetwork removes the pod bridge and veths, and the iptables chains kube-proxy, flannel and
// the CNI plugins created (IPv4 and IPv6).
func CleanNetwork() {
	_ = exec.Command("ip", "link", "delete", "outpost0").Run()
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"nat", "filter", "mangle"} {
			cleanTable(tool, table)
		}
	}
	// After the rules that referenced them: a set in use cannot be destroyed.
	for _, set := range policySets() {
		_ = exec.Command("ipset", "destroy", set).Run()
	}
}

// policySets are the ipsets kube-router's policy controller made (KUBE-SRC-, KUBE-DST-, and
// inet6: for IPv6).
func policySets() []string {
	out, _ := exec.Command("ipset", "list", "-n").Output()
	var sets []string
	for _, n := range strings.Fields(string(out)) {
		n6 := strings.TrimPrefix(n, "inet6:")
		if strings.HasPrefix(n6, "KUBE-SRC-") || strings.HasPrefix(n6, "KUBE-DST-") {
			sets = append(sets, n)
		}
	}
	return sets
}

func ours(chain string) bool {
	return strings.HasPrefix(chain, "KUBE-") || strings.HasPrefix(chain, "CNI-") || strings.HasPrefix(chain, "OUTPOST-") ||
		strings.HasPrefix(chain, "FLANNEL-")
}

func cleanTable(tool, table string) {
	out, _ := exec.Command(tool+"-save", "-t", table).Output()
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, ":") && ours(strings.Fields(line[1:])[0]) {
			chains = append(chains, strings.Fields(line[1:])[0])
		}
	}
	// Drop the jumps into our chains from the built-in ones (through a shell: the saved rules
	// carry quoted comments), then flush and delete the chains themselves.
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || ours(f[1]) {
			continue
		}
		if strings.Contains(line, "-j KUBE-") || strings.Contains(line, "-j CNI-") || strings.Contains(line, "-j OUTPOST-") {
			_ = exec.Command("sh", "-c", tool+" -t "+table+" -D "+strings.TrimPrefix(line, "-A ")).Run()
		}
	}
	for _, c := range chains {
		_ = exec.Command(tool, "-t", table, "-F", c).Run()
	}
	for _, c := range chains {
		_ = exec.Command(tool, "-t", table, "-X", c).Run()
	}
}

// zombie reports whether pid has exited and only waits for its parent to reap it.
func zombie(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

// skipMount, when set, exempts infrastructure mounts (a throwaway root's own) from Leftovers.
var skipMount = func(string) bool { return false }

// Leftovers lists what a cleaned-up server still left on the host: pod processes (in a
// kubepods cgroup), mounts under root, the pod bridge, iptables chains.
func Leftovers(root string) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err == nil && bytes.Contains(cg, []byte("kubepods")) && !zombie(e.Name()) {
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			left = append(left, "process "+e.Name()+" "+strings.TrimSpace(string(comm)))
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root) && !skipMount(f[4]) {
			left = append(left, "mount "+f[4])
		}
	}
	if exec.Command("ip", "link", "show", "outpost0").Run() == nil {
		left = append(left, "link outpost0")
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(tool).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") {
				left = append(left, tool+" chain "+strings.Fields(line)[0][1:])
			}
		}
	}
	for _, set := range policySets() {
		left = append(left, "ipset "+set)
	}
	return left
}
