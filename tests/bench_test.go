package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpostk8s/outpost/tests/harness"
)

// benchIdle skips a bench outside `make bench` and gives how long it lets the server idle
// before measuring memory (OUTPOST_BENCH_IDLE, default 2m).
func benchIdle(t *testing.T) time.Duration {
	t.Helper()
	if os.Getenv("OUTPOST_BENCH") == "" {
		t.Skip("a report, not a test: run `make bench`")
	}
	idle := 2 * time.Minute
	if v := os.Getenv("OUTPOST_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OUTPOST_BENCH_IDLE=%q: %v (a duration such as 2m)", v, err)
		}
		idle = d
	}
	return idle
}

// TestBench is `make bench`: a report, not a test. It runs only with OUTPOST_BENCH=1.
func TestBench(t *testing.T) {
	idle := benchIdle(t)
	// Profiling on: the heap at idle and the CPU of the pod burst are saved for pprof.
	s := harness.NewServer(t, "--kube-apiserver-arg", "profiling=true")
	profDir := os.Getenv("OUTPOST_BENCH_PROFILES")
	s.Unpack = true // cold means a new machine: the download unpacks its payload first
	t.Cleanup(s.Cleanup)
	img, imgName := harness.TestImage(t)
	os.MkdirAll(filepath.Join(s.DataDir(), "agent", "images"), 0o755)
	copyFile(t, img, filepath.Join(s.DataDir(), "agent", "images", "optest.tar"))

	var rows [][2]string
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }

	cold := startTimes(t, s)
	add("node Ready, cold first start (unpacking included; to the first heartbeat)", fmt.Sprintf("%.1f s", cold.heartbeat))
	add("  the server's ready line (the node's network and policy controller up too)", fmt.Sprintf("%.1f s", cold.line))
	add("CoreDNS Ready, cold first start", fmt.Sprintf("%.1f s", cold.dns))
	add("every packaged component Ready (kube-system pods, metrics API), cold", fmt.Sprintf("%.1f s", componentsReady(t, s)))
	s.Stop()
	warm := startTimes(t, s)
	add("node Ready, warm restart (to the first heartbeat)", fmt.Sprintf("%.1f s", warm.heartbeat))
	add("  the server's ready line", fmt.Sprintf("%.1f s", warm.line))
	add("CoreDNS Ready, warm restart", fmt.Sprintf("%.1f s", warm.dns))
	componentsReady(t, s)

	time.Sleep(idle)
	mem := measureTree(t, s)
	add(fmt.Sprintf("idle RSS after %s (outpost, containerd, shims: %d procs)", idle, mem.roots), fmt.Sprintf("%.0f MiB", mem.rootsRSS))
	pssAll := mem.pss
	add("  of which outpost (one process: the control plane, kubelet, network, GPU layer)", fmt.Sprintf("%.0f MiB", mem.by["outpost"]))
	add("  of which containerd", fmt.Sprintf("%.0f MiB", mem.by["containerd"]))
	saveProfile(t, s, profDir, "heap", "idle-heap.pprof")
	add(fmt.Sprintf("idle PSS after %s, whole tree with every component (%d procs incl. containers)", idle, mem.procs), fmt.Sprintf("%.0f MiB", pssAll))
	for _, c := range []string{"coredns", "local-path-prov"} {
		add("  of which the "+c+" container", fmt.Sprintf("%.0f MiB", mem.by[c]))
	}

	fi, _ := os.Stat(s.Bin)
	add("download size (the outer binary, payload inside)", fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)))
	if fi, err := os.Stat(filepath.Join(s.DataDir(), "data", "current", "bin", "outpost")); err == nil {
		add("inner outpost program, unpacked", fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)))
	}
	if out, err := exec.Command("du", "-sm", "--apparent-size", filepath.Join(s.DataDir(), "data", "current")+"/").Output(); err == nil {
		add("payload unpacked on disk", strings.Fields(string(out))[0]+" MiB")
	}
	for _, r := range bundledParts(t, s) {
		add(r[0], r[1])
	}
	// The same idle tree without the platform components, before any load: what they cost
	// together (the in-process metrics-server, servicelb and policy controller show only here).
	s.Stop()
	s.Args = append(s.Args, "--disable", "local-storage", "--disable", "metrics-server", "--disable", "servicelb", "--disable-network-policy")
	startTimes(t, s)
	harness.Eventually(t, 2*time.Minute, "local-path-provisioner gone", func() error {
		if measureTree(t, s).by["local-path-prov"] > 0 {
			return fmt.Errorf("still running")
		}
		return nil
	})
	time.Sleep(idle)
	pssBase := measureTree(t, s).pss
	add(fmt.Sprintf("idle PSS after %s without local-storage, metrics-server, servicelb, network policy", idle), fmt.Sprintf("%.0f MiB", pssBase))
	add("  so those four cost together", fmt.Sprintf("%.0f MiB", pssAll-pssBase))

	// Writes on the idle server: after the 50 pods, their teardown would be measured too.
	w50, w99 := apiWrites(t, s, 50, time.Minute)
	add("API writes on SQLite (ConfigMap create, 50/s for 60 s, idle server): p50 / p99", fmt.Sprintf("%.1f / %.1f ms", w50, w99))
	add("etcd-snapshot save on the running server (SQLite, after those writes)", fmt.Sprintf("%.2f s", snapshotTime(t, s)))

	burstProfile := make(chan struct{})
	go func() { // the burst lasts about this long on two cores
		defer close(burstProfile)
		saveProfile(t, s, profDir, "profile?seconds=15", "burst-cpu.pprof")
	}()
	cpu0 := treeCPU(t, s)
	p50, p99, max := podStartup(t, s, imgName, 50)
	cpu := treeCPU(t, s)
	<-burstProfile
	add("50 pods at once: startup p50 / p99 / max", fmt.Sprintf("%.2f / %.2f / %.2f s", p50, p99, max))
	rows = append(rows, cpuRows(cpu0, cpu, 50)...)

	fmt.Println()
	fmt.Println("| measurement | value |")
	fmt.Println("|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s |\n", r[0], r[1])
	}
}

// bundledParts are the sizes of what the download carries: the payload archive, and each
// file unpacked from it (the inner outpost, the bundled binaries, the image archives).
func bundledParts(t *testing.T, s *harness.Server) [][2]string {
	t.Helper()
	mib := func(p string) string {
		fi, err := os.Stat(p)
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
	}
	assets := filepath.Join("..", "pkg", "payload", "embedded", "assets", runtime.GOARCH)
	rows := [][2]string{{"  payload.tar.zst (in the download)", mib(filepath.Join(assets, "payload.tar.zst"))}}
	cur := filepath.Join(s.DataDir(), "data", "current")
	for _, sub := range []string{"bin", "images"} {
		ents, _ := os.ReadDir(filepath.Join(cur, sub))
		for _, e := range ents {
			if e.Type().IsRegular() {
				rows = append(rows, [2]string{"    unpacked " + sub + "/" + e.Name(), mib(filepath.Join(cur, sub, e.Name()))})
			}
		}
	}
	return rows
}

// startup is seconds from a start's exec to: the node's first Ready heartbeat of this run (what
// the start-time limits count; a watch sees it), the server's ready line (which also waits for
// the node's network and policy controller), and CoreDNS Ready.
type startup struct{ heartbeat, line, dns float64 }

// startTimes starts the server and measures its startup.
func startTimes(t *testing.T, s *harness.Server) startup {
	before := strings.Count(s.Log(), readyLine)
	s.Start()
	start := s.Started()
	hb := make(chan float64, 1)
	go func() { hb <- firstHeartbeat(s.Kubeconfig, start, 3*time.Minute) }()
	var r startup
	// Polled finely: the figure is compared with limits a few tenths of a second apart.
	for strings.Count(s.Log(), readyLine) == before {
		if time.Since(start) > 3*time.Minute {
			t.Fatal("no ready line within 3m")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.line = time.Since(start).Seconds()
	if r.heartbeat = <-hb; r.heartbeat < 0 {
		t.Fatal("no Ready heartbeat of this run within 3m")
	}
	harness.Eventually(t, 3*time.Minute, "coredns Ready", func() error {
		out, err := s.Kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o",
			"jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
		if err != nil || strings.TrimSpace(out) != "True" {
			return fmt.Errorf("%q", out)
		}
		r.dns = time.Since(start).Seconds()
		return nil
	})
	return r
}

// firstHeartbeat watches the nodes from as soon as the apiserver answers and returns the
// seconds since start at which one is Ready with a heartbeat of this run (heartbeats carry
// whole seconds, so "of this run" is from the second before start), or -1.
func firstHeartbeat(kubeconfig string, start time.Time, timeout time.Duration) float64 {
	since := metav1.NewTime(start.Add(-time.Second).Truncate(time.Second))
	for time.Since(start) < timeout {
		if took, ok := watchHeartbeat(kubeconfig, since, start, timeout); ok {
			return took
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func watchHeartbeat(kubeconfig string, since metav1.Time, start time.Time, timeout time.Duration) (float64, bool) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 0, false
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(timeout))
	defer cancel()
	w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, false
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		n, ok := ev.Object.(*corev1.Node)
		if !ok {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Before(&since) {
				return time.Since(start).Seconds(), true
			}
		}
	}
	return 0, false
}

// componentsReady waits until every kube-system pod is Ready and the metrics API is Available;
// seconds since the last start.
func componentsReady(t *testing.T, s *harness.Server) float64 {
	var took float64
	harness.Eventually(t, 3*time.Minute, "packaged components Ready", func() error {
		out, err := s.Kubectl("-n", "kube-system", "get", "pods", "-o",
			"jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].status} {end}")
		if err != nil || strings.Contains(out, "=False") || strings.Contains(out, "= ") || !strings.Contains(out, "local-path") {
			return fmt.Errorf("pods %q %v", out, err)
		}
		if out, err := s.Kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o",
			"jsonpath={.status.conditions[?(@.type=='Available')].status}"); err != nil || out != "True" {
			return fmt.Errorf("metrics API %q %v", out, err)
		}
		took = time.Since(s.Started()).Seconds()
		return nil
	})
	return took
}

// treeMem is the memory of outpost, containerd and the shims (the roots: binaries of this
// server) and of every process of their containers, read from smaps_rollup.
type treeMem struct {
	rootsRSS float64 // MiB, the roots only
	roots    int
	pss      float64 // MiB, the whole tree
	procs    int
	by       map[string]float64 // PSS per command name
}

// serverTree is outpost, containerd and the shims (the roots: binaries of this server) and
// every descendant (the containers' processes), with each one's command name.
type serverTree struct {
	roots map[int]bool
	comm  map[int]string
	all   []int
}

func treeOf(t *testing.T, s *harness.Server) serverTree {
	out, err := exec.Command("ps", "-eo", "pid=,ppid=,comm=").Output()
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]int{}
	tr := serverTree{roots: map[int]bool{}, comm: map[int]string{}}
	var roots []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		tr.comm[pid] = f[2]
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if exe == s.Bin || strings.HasPrefix(exe, s.DataDir()) {
			roots = append(roots, pid)
			tr.roots[pid] = true
		}
	}
	seen := map[int]bool{}
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		tr.all = append(tr.all, pid)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return tr
}

func measureTree(t *testing.T, s *harness.Server) treeMem {
	tr := treeOf(t, s)
	m := treeMem{roots: len(tr.roots), procs: len(tr.all), by: map[string]float64{}}
	for _, pid := range tr.all {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch {
			case f[0] == "Pss:":
				m.pss += kb / 1024
				m.by[tr.comm[pid]] += kb / 1024
			case f[0] == "Rss:" && tr.roots[pid]:
				m.rootsRSS += kb / 1024
			}
		}
	}
	return m
}

// treeCPU is the CPU seconds (user and system) so far of outpost, containerd, the shims and
// their containers, by command name; what each has waited for (runc under the shims, the CNI
// plugins under containerd, iptables under outpost) is under "children of NAME".
func treeCPU(t *testing.T, s *harness.Server) map[string]float64 {
	tick := 100.0 // USER_HZ on Linux
	m := map[string]float64{}
	tr := treeOf(t, s)
	for _, pid := range tr.all {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// the fields after the command, which is in parentheses and may hold spaces
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		v := func(i int) float64 { x, _ := strconv.ParseFloat(f[i], 64); return x / tick }
		c := tr.comm[pid]
		m[c] += v(11) + v(12)                // utime stime
		m["children of "+c] += v(13) + v(14) // cutime cstime
	}
	return m
}

// cpuRows are the per-pod CPU of a burst of n pods, whole and by part, largest first.
func cpuRows(before, after map[string]float64, n int) [][2]string {
	var parts []string
	total := 0.0
	for k := range after {
		if d := after[k] - before[k]; d > 0 {
			total += d
			parts = append(parts, k)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return after[parts[i]]-before[parts[i]] > after[parts[j]]-before[parts[j]] })
	rows := [][2]string{{fmt.Sprintf("%d pods at once: CPU per pod of the whole tree (outpost, containerd, shims, runc, CNI, the pods)", n), fmt.Sprintf("%.2f s", total/float64(n))}}
	for _, k := range parts {
		if d := after[k] - before[k]; d/float64(n) >= 0.005 {
			rows = append(rows, [2]string{"  of which " + k, fmt.Sprintf("%.3f s", d/float64(n))})
		}
	}
	return rows
}

// saveProfile writes the apiserver's (this process's) pprof endpoint p to dir/name.
func saveProfile(t *testing.T, s *harness.Server, dir, p, name string) {
	if dir == "" {
		return
	}
	out, err := s.Kubectl("get", "--raw", "/debug/pprof/"+p)
	if err != nil {
		t.Logf("profile %s: %v", p, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
		t.Log(err)
	}
}

// podStartup creates n pods at once and measures, by a watch, each pod's time from being added
// to being Running.
func podStartup(t *testing.T, s *harness.Server, image string, n int) (p50, p99, max float64) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 200
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := "bench"
	cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	added, running := map[string]time.Time{}, map[string]time.Time{}
	go func() {
		for i := 0; i < n; i++ {
			grace := int64(1)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%02d", i)},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
					Name: "c", Image: image, ImagePullPolicy: corev1.PullNever, Args: []string{"sleep"},
					Resources: corev1.ResourceRequirements{}}}}}
			go cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		}
	}()
	for len(running) < n {
		select {
		case ev := <-w.ResultChan():
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Now()
			if ev.Type == watch.Added {
				added[pod.Name] = now
			}
			if pod.Status.Phase == corev1.PodRunning && running[pod.Name].IsZero() {
				running[pod.Name] = now
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d pods Running", len(running), n)
		}
	}
	var lat []float64
	for name, r := range running {
		lat = append(lat, r.Sub(added[name]).Seconds())
	}
	sort.Float64s(lat)
	cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	return lat[len(lat)/2], lat[(len(lat)*99+99)/100-1], lat[len(lat)-1]
}
