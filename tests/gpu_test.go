package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpostk8s/outpost/pkg/gpu/fakedriver"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/tests/harness"
)

// fakeGPUHost lays out what a driver install looks like to Outpost: /dev/nvidia0..7 (char
// devices cloned from /dev/null, so containers can open them), control nodes, and under a
// driver root the driver's libraries of every class (ELF files with their sonames), graphics
// ICD files, GSP firmware, the persistenced socket and the binaries (pkg/gpu/fakedriver).
func fakeGPUHost(t *testing.T, root string) (devRoot, driverRoot string) {
	t.Helper()
	devRoot, driverRoot = filepath.Join(root, "gpudev"), filepath.Join(root, "gpudriver")
	os.MkdirAll(filepath.Join(devRoot, "dev"), 0o755)
	nodes := []string{"nvidiactl", "nvidia-uvm"}
	for i := 0; i < 8; i++ {
		nodes = append(nodes, fmt.Sprintf("nvidia%d", i))
	}
	for _, n := range nodes {
		if err := syscall.Mknod(filepath.Join(devRoot, "dev", n), syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
			t.Fatalf("mknod %s: %v", n, err)
		}
	}
	sock, err := fakedriver.Make(driverRoot, "550.54.15")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return devRoot, driverRoot
}

// TestGPUMock runs the real server with its GPU layer on the NVML mock (8 x A100) and fake
// device nodes: the acceptance checks of the GPU issue that need a cluster.
func TestGPUMock(t *testing.T) {
	harness.Bin(t)
	pluginDirExisted := exists("/var/lib/kubelet/device-plugins")
	root := t.TempDir()
	devRoot, driverRoot := fakeGPUHost(t, root)
	// Time-slicing configs in the device plugin's format, a node picking one by its label; no
	// default.yaml, so whole GPUs until it does.
	sharingDir := filepath.Join(root, "sharing")
	os.MkdirAll(sharingDir, 0o755)
	os.WriteFile(filepath.Join(sharingDir, "ts4.yaml"), []byte("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n"), 0o644)
	s := harness.NewServer(t, "--gpu-mock", "dgxa100", "--gpu-dev-root", devRoot, "--gpu-driver-root", driverRoot,
		"--gpu-health-quiet", "20s", "--gpu-sharing-config", sharingDir)
	s.Args = append(s.Args, "--gpu-cdi-dir", filepath.Join(s.Root, "cdi"))
	t.Cleanup(func() {
		if t.Failed() { // the GPU layer's own account: labels, plugins, layouts
			var gpu []string
			for _, l := range strings.Split(s.Log(), "\n") {
				if strings.Contains(l, "component=gpu") || strings.Contains(l, "[gpu") {
					gpu = append(gpu, l)
				}
			}
			t.Logf("the GPU layer's last log lines:\n%s", tailLines(strings.Join(gpu, "\n"), 40))
		}
		if left := harness.Leftovers(s.Root); len(left) > 0 {
			t.Errorf("left on the host after cleanup: %v", left)
		}
		if n := helpers("--mock"); n != 0 {
			t.Errorf("%d GPU helpers outlived the server", n)
		}
		if !pluginDirExisted {
			os.RemoveAll("/var/lib/kubelet")
		}
	})
	t.Cleanup(s.Cleanup)
	img, imgName := harness.TestImage(t)
	os.MkdirAll(filepath.Join(s.DataDir(), "agent", "images"), 0o755)
	copyFile(t, img, filepath.Join(s.DataDir(), "agent", "images", "optest.tar"))
	s.Start()
	if err := s.WaitLog(readyLine, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	alloc := func() (string, string) {
		out, _ := s.Kubectl("get", "node", "-o", `jsonpath={.items[0].status.allocatable.nvidia\.com/gpu} {.items[0].status.conditions[?(@.type=="GPUHealthy")].status}`)
		f := strings.Fields(out)
		for len(f) < 2 {
			f = append(f, "")
		}
		return f[0], f[1]
	}

	// The agent reads the mock through the GPU helper from the payload, as a node with a real
	// driver reads NVML: one long-lived helper while the agent runs.
	t.Run("ThroughTheHelper", func(t *testing.T) {
		if n := helpers("--mock"); n != 1 {
			t.Errorf("%d GPU helpers with the mock running, want 1", n)
		}
	})

	t.Run("AllocatableAndLabels", func(t *testing.T) {
		harness.Eventually(t, time.Minute, "8 GPUs allocatable, GPUHealthy=True", func() error {
			if n, h := alloc(); n != "8" || h != "True" {
				return fmt.Errorf("allocatable %q GPUHealthy %q", n, h)
			}
			return nil
		})
		// The labels come from their own loop (a patch every 2 s until they hold), not with the
		// device plugin's allocatable: wait for them as well, a minute at most.
		harness.Eventually(t, time.Minute, "GPU labels on the node", func() error {
			labels, err := s.Kubectl("get", "node", "-o", "jsonpath={.items[0].metadata.labels}")
			if err != nil {
				return err
			}
			for _, want := range []string{`"nvidia.com/gpu.present":"true"`, `"nvidia.com/gpu.count":"8"`, `"nvidia.com/gpu.product":"NVIDIA-A100-SXM4-40GB"`,
				`"nvidia.com/gpu.memory":"40960"`, `"nvidia.com/cuda.driver.major":"550"`, `"nvidia.com/cuda.driver.minor":"54"`,
				`"nvidia.com/mig.capable":"true"`, `"nvidia.com/mig.strategy":"none"`, `"nvidia.com/gpu.replicas":"1"`,
				`"nvidia.com/gpu.validation":"passed"`} {
				if !strings.Contains(labels, want) {
					return fmt.Errorf("labels lack %s: %s", want, labels)
				}
			}
			return nil
		})
	})
	t.Run("PodGetsTwoGPUs", func(t *testing.T) {
		applyGPUPod(t, s, "gpu2", imgName, 2)
		if out, err := s.Kubectl("wait", "--for=condition=Ready", "pod/gpu2", "--timeout=90s"); err != nil {
			t.Fatal(out, err)
		}
		devs := strings.Fields(s.MustKubectl("exec", "gpu2", "--", "/optest", "ls", "/dev", "nvidia"))
		gpus := 0
		for _, d := range devs {
			if strings.TrimPrefix(d, "nvidia") != d && d != "nvidiactl" && d != "nvidia-uvm" {
				gpus++
			}
		}
		if gpus != 2 {
			t.Errorf("pod sees GPU device nodes %v, want 2", devs)
		}
		env := strings.TrimSpace(s.MustKubectl("exec", "gpu2", "--", "/optest", "env", "NVIDIA_VISIBLE_DEVICES"))
		if ids := strings.Split(strings.TrimPrefix(env, "NVIDIA_VISIBLE_DEVICES="), ","); len(ids) != 2 || !strings.HasPrefix(ids[0], "GPU-") {
			t.Errorf("%s", env)
		}
		if libs := s.MustKubectl("exec", "gpu2", "--", "/optest", "ls", "/usr/lib/x86_64-linux-gnu", "libnvidia-ml"); !strings.Contains(libs, "libnvidia-ml.so.1") {
			t.Errorf("driver library not in the container: %q", libs)
		}
	})
	t.Run("EveryFileClassInTheContainer", func(t *testing.T) { fileClassChecks(t, s) })
	t.Run("NinthGPUPending", func(t *testing.T) {
		applyGPUPod(t, s, "gpu9", imgName, 9)
		harness.Eventually(t, time.Minute, "FailedScheduling for 9 GPUs", func() error {
			out, err := s.Kubectl("get", "events", "--field-selector", "involvedObject.name=gpu9,reason=FailedScheduling", "-o", "jsonpath={.items[*].message}")
			if err != nil || !strings.Contains(out, "nvidia.com/gpu") {
				return fmt.Errorf("events %q %v", out, err)
			}
			return nil
		})
		if phase := s.MustKubectl("get", "pod", "gpu9", "-o", "jsonpath={.status.phase}"); phase != "Pending" {
			t.Errorf("phase %s", phase)
		}
		s.MustKubectl("delete", "pod", "gpu9", "--wait=false")
	})
	t.Run("XIDRemovesAndRecoveryRestores", func(t *testing.T) {
		f, err := os.OpenFile(filepath.Join(s.DataDir(), "agent", "gpu-mock-inject"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "xid 5 79")
		f.Close()
		harness.Eventually(t, 30*time.Second, "7 allocatable, GPUHealthy=False", func() error {
			if n, h := alloc(); n != "7" || h != "False" {
				return fmt.Errorf("allocatable %q GPUHealthy %q", n, h)
			}
			return nil
		})
		msg := s.MustKubectl("get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="GPUHealthy")].message}`)
		if !strings.Contains(msg, "XID 79") {
			t.Errorf("condition message %q does not name the XID", msg)
		}
		ev := s.MustKubectl("get", "events", "--field-selector", "reason=GPUUnhealthy", "-o", "jsonpath={.items[*].message}")
		if !strings.Contains(ev, "XID 79") {
			t.Errorf("no GPUUnhealthy event naming the XID: %q", ev)
		}
		harness.Eventually(t, 90*time.Second, "8 allocatable, GPUHealthy=True again", func() error {
			if n, h := alloc(); n != "8" || h != "True" {
				return fmt.Errorf("allocatable %q GPUHealthy %q", n, h)
			}
			return nil
		})
	})
	// After a fatal XID a GPU comes back only once it runs a kernel again (the mock's check is
	// injected): failing, it stays out with the reason, the label and GPUValidated say so.
	t.Run("ValidatedAgainAfterXID", func(t *testing.T) {
		inject := func(line string) {
			f, err := os.OpenFile(filepath.Join(s.DataDir(), "agent", "gpu-mock-inject"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, line)
			f.Close()
		}
		if out := s.MustKubectl("get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="GPUValidated")].status}`); out != "True" {
			t.Errorf("GPUValidated %q after the start", out)
		}
		inject("fail-validation 6")
		inject("xid 6 79")
		harness.Eventually(t, 90*time.Second, "GPU 6 out, failing its validation", func() error {
			out := s.MustKubectl("get", "node", "-o", `jsonpath={.items[0].metadata.labels.nvidia\.com/gpu\.validation} {.items[0].status.conditions[?(@.type=="GPUValidated")].message}`)
			if n, _ := alloc(); n != "7" || !strings.HasPrefix(out, "failed ") || !strings.Contains(out, "CUDA_ERROR_ECC_UNCORRECTABLE") {
				return fmt.Errorf("allocatable %s, validation %q", n, out)
			}
			return nil
		})
		inject("pass-validation 6")
		harness.Eventually(t, 90*time.Second, "GPU 6 back once it passes", func() error {
			out := s.MustKubectl("get", "node", "-o", `jsonpath={.items[0].metadata.labels.nvidia\.com/gpu\.validation} {.items[0].status.conditions[?(@.type=="GPUValidated")].status}`)
			if n, h := alloc(); n != "8" || h != "True" || out != "passed True" {
				return fmt.Errorf("allocatable %s GPUHealthy %s, validation %q", n, h, out)
			}
			return nil
		})
	})
	t.Run("Metrics", func(t *testing.T) {
		// Anyone on the pod network reaches the port: only a caller the apiserver names and
		// allows to get /metrics reads it, over HTTPS.
		if resp, err := http.Get("http://127.0.0.1:9401/metrics"); err == nil {
			if resp.Body.Close(); resp.StatusCode == http.StatusOK {
				t.Error("GPU metrics served over plain HTTP")
			}
		}
		if code := gpuMetricsStatus(t, s, false); code != http.StatusUnauthorized {
			t.Errorf("GPU metrics without credentials: %d, want 401", code)
		}
		body := gpuMetrics(t, s)
		for _, name := range []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_TOTAL",
			"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
			"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
			"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "outpost_gpu_xid_errors_total", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_MEM_COPY_UTIL",
			"DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_POWER_MGMT_LIMIT",
			"DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
			"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
			"DCGM_FI_PROF_GR_ENGINE_ACTIVE"} {
			if c := strings.Count(string(body), "\n"+name+"{"); c != 8 {
				t.Errorf("%s: %d samples, want 8", name, c)
			}
		}
		// Labels come sorted (client_golang); GPU 5 had XID 79, its count and last XID say so.
		xid5 := `UUID="` + mockgpu.UUID(5) + `"`
		if !hasSample(body, "outpost_gpu_xid_errors_total", xid5, "1") || !hasSample(body, "DCGM_FI_DEV_XID_ERRORS", xid5, "79") || !strings.Contains(string(body), `Hostname=`) {
			t.Errorf("metrics:\n%s", body)
		}
		// The pod holding two GPUs is named on their series (the kubelet's PodResources API),
		// and on no other GPU's.
		env := strings.TrimSpace(s.MustKubectl("exec", "gpu2", "--", "/optest", "env", "NVIDIA_VISIBLE_DEVICES"))
		held := strings.Split(strings.TrimPrefix(env, "NVIDIA_VISIBLE_DEVICES="), ",")
		var named []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "DCGM_FI_DEV_GPU_UTIL{") && strings.Contains(l, `container="c",`) && strings.Contains(l, `namespace="default",pod="gpu2"}`) {
				named = append(named, l)
			}
		}
		if len(held) != 2 || len(named) != 2 || !strings.Contains(strings.Join(named, " "), `UUID="`+held[0]+`"`) ||
			!strings.Contains(strings.Join(named, " "), `UUID="`+held[1]+`"`) {
			t.Errorf("pod gpu2 holds %v; util series naming it: %v", held, named)
		}
	})
	t.Run("SharingConfigByLabel", func(t *testing.T) { sharingChecks(t, s, alloc) })
	t.Run("MIGLayoutByLabel", func(t *testing.T) { migChecks(t, s) })
}

// fileClassChecks: the pod holding two GPUs sees the driver's files of every class NVIDIA's
// generator knows (video, graphics, firmware, IPC, utility), with the .so.1 links the
// create-symlinks hook makes, and its ld.so cache lists them: the update-ldcache hook ran, through
// the GPU helper, with no toolkit binary on the host.
func fileClassChecks(t *testing.T, s *harness.Server) {
	const version = "550.54.15"
	var want []string
	for _, libs := range fakedriver.Libraries() {
		for _, l := range libs {
			want = append(want, fakedriver.LibDir+"/"+l+"."+version, fakedriver.LibDir+"/"+l+".1")
		}
	}
	for _, files := range fakedriver.Files(version) {
		want = append(want, files...)
	}
	for _, p := range want {
		dir, base := filepath.Dir(p), filepath.Base(p)
		if out, err := s.Kubectl("exec", "gpu2", "--", "/optest", "ls", dir, base); err != nil || !strings.Contains(out, base) {
			t.Errorf("%s is not in the container: %q %v", p, out, err)
		}
	}
	cache, err := s.Kubectl("exec", "gpu2", "--", "/optest", "read", "/etc/ld.so.cache")
	if err != nil {
		t.Fatalf("the container has no ld.so cache (the update-ldcache hook did not run): %v", err)
	}
	for _, l := range []string{"libcuda.so.1", "libnvcuvid.so.1", "libnvidia-encode.so.1", "libEGL_nvidia.so.1"} {
		if !strings.Contains(cache, l) {
			t.Errorf("the container's ld.so cache does not list %s", l)
		}
	}
}

// migChecks: the node's nvidia.com/mig.config label lays out the GPUs. While pod gpu2 holds two
// GPUs the layout waits (pending, an Event naming the pod); once it is gone the layout is
// applied and its MIG devices are allocatable under the implied mixed strategy; all-disabled
// brings whole GPUs back; a profile the A100 does not offer fails with an Event.
func migChecks(t *testing.T, s *harness.Server) {
	node := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"))
	state := func(want, mig, gpus string) func() error {
		return func() error {
			out := s.MustKubectl("get", "node", node, "-o", `jsonpath={.metadata.labels.nvidia\.com/mig\.config\.state}/{.status.allocatable.nvidia\.com/mig-1g\.5gb}/{.status.allocatable.nvidia\.com/gpu}`)
			if out != want+"/"+mig+"/"+gpus {
				return fmt.Errorf("state/mig-1g.5gb/gpu %q, want %s/%s/%s", out, want, mig, gpus)
			}
			return nil
		}
	}
	event := func(reason, text string) func() error {
		return func() error {
			out, err := s.Kubectl("get", "events", "--field-selector", "reason="+reason, "-o", "jsonpath={.items[*].message}")
			if err != nil || !strings.Contains(out, text) {
				return fmt.Errorf("%s events %q %v", reason, out, err)
			}
			return nil
		}
	}
	s.MustKubectl("label", "node", node, "nvidia.com/mig.config=all-1g.5gb")
	harness.Eventually(t, 60*time.Second, "pending while gpu2 holds two GPUs", event("MIGLayoutPending", "held by pod default/gpu2"))
	if err := state("pending", "", "8")(); err != nil {
		t.Fatal(err)
	}
	s.MustKubectl("delete", "pod", "gpu2", "--grace-period=1")
	harness.Eventually(t, 90*time.Second, "all-1g.5gb: 56 MIG devices allocatable", state("success", "56", "0"))
	if out := s.MustKubectl("get", "node", node, "-o", `jsonpath={.metadata.labels.nvidia\.com/mig-1g\.5gb\.count} {.metadata.labels.nvidia\.com/mig\.strategy}`); out != "56 mixed" {
		t.Errorf("labels: %q", out)
	}
	if spec := readFile(t, filepath.Join(s.Root, "cdi", "nvidia.yaml")); !strings.Contains(spec, `name: "7:7"`) {
		t.Errorf("the CDI spec does not name GPU 7's seventh MIG device")
	}
	// Each MIG device has its own memory series, as dcgm-exporter serves them.
	body := gpuMetrics(t, s)
	if c := strings.Count(string(body), `GPU_I_PROFILE="1g.5gb"`); c != 56*3 {
		t.Errorf("%d MIG memory samples, want 56 devices × 3 series", c)
	}
	s.MustKubectl("label", "--overwrite", "node", node, "nvidia.com/mig.config=all-2g.20gb")
	harness.Eventually(t, 60*time.Second, "failed: the A100 40GB has no 2g.20gb", event("MIGLayoutFailed", "does not offer MIG profile 2g.20gb"))
	if err := state("failed", "56", "0")(); err != nil {
		t.Errorf("a failed layout changed the GPUs: %v", err)
	}
	s.MustKubectl("label", "--overwrite", "node", node, "nvidia.com/mig.config=all-disabled")
	harness.Eventually(t, 90*time.Second, "all-disabled: 8 whole GPUs", state("success", "0", "8"))
}

// sharingChecks: the node's label picks a time-slicing config; the device plugin advertises
// it without a restart, the labels say so, and a name with no config is refused with an Event.
func sharingChecks(t *testing.T, s *harness.Server, alloc func() (string, string)) {
	node := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"))
	labelsSay := func(replicas, strategy string) func() error {
		return func() error {
			l := s.MustKubectl("get", "node", node, "-o", `jsonpath={.metadata.labels.nvidia\.com/gpu\.replicas} {.metadata.labels.nvidia\.com/gpu\.sharing-strategy}`)
			if n, _ := alloc(); n != fmt.Sprint(8*mustAtoi(replicas)) || l != replicas+" "+strategy {
				return fmt.Errorf("allocatable %s, labels %q", n, l)
			}
			return nil
		}
	}
	if err := labelsSay("1", "none")(); err != nil {
		t.Fatalf("before: %v", err)
	}
	s.MustKubectl("label", "node", node, "nvidia.com/device-plugin.config=ts4")
	harness.Eventually(t, 90*time.Second, "ts4: 32 allocatable, replicas 4, time-slicing", labelsSay("4", "time-slicing"))
	s.MustKubectl("label", "--overwrite", "node", node, "nvidia.com/device-plugin.config=ts9")
	harness.Eventually(t, 60*time.Second, "SharingConfigFailed event naming ts9", func() error {
		out, err := s.Kubectl("get", "events", "--field-selector", "reason=SharingConfigFailed", "-o", "jsonpath={.items[*].message}")
		if err != nil || !strings.Contains(out, "nvidia.com/device-plugin.config=ts9: no such config") {
			return fmt.Errorf("events %q %v", out, err)
		}
		return nil
	})
	if err := labelsSay("4", "time-slicing")(); err != nil {
		t.Errorf("after a refused name the node should keep ts4: %v", err)
	}
	s.MustKubectl("label", "node", node, "nvidia.com/device-plugin.config-")
	harness.Eventually(t, 90*time.Second, "back to whole GPUs", labelsSay("1", "none"))
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func applyGPUPod(t *testing.T, s *harness.Server, name, image string, gpus int) {
	t.Helper()
	f := filepath.Join(s.Root, name+".yaml")
	os.WriteFile(f, []byte(gpuPodYAML(name, image, "", gpus)), 0o600)
	s.MustKubectl("apply", "-f", f)
}

// gpuPodYAML is a pod of the test image asking for gpus GPUs, through runtimeClass if set.
func gpuPodYAML(name, image, runtimeClass string, gpus int) string {
	rc := ""
	if runtimeClass != "" {
		rc = "\n  runtimeClassName: " + runtimeClass
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:%s
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    args: [sleep]
    resources: {limits: {nvidia.com/gpu: %d}}
`, name, rc, image, gpus)
}

// hasSample reports whether body has a name sample whose labels contain label and whose value
// is value.
func hasSample(body, name, label, value string) bool {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, label) && strings.HasSuffix(l, "} "+value) {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// helpers counts the running outpost-gpu processes whose arguments contain arg.
func helpers(arg string) int {
	n := 0
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == "outpost-gpu" && strings.Contains(string(b), arg) {
			n++
		}
	}
	return n
}

// gpuMetricsClient speaks HTTPS to the node's GPU metrics, checking the kubelet's serving
// certificate, as the cluster admin (its client certificate) or as nobody.
func gpuMetricsClient(t *testing.T, s *harness.Server, admin bool) *http.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CAData, cfg.CAFile = nil, filepath.Join(s.DataDir(), "server", "tls", pki.KubeletCABundle+".crt")
	if !admin {
		cfg.CertData, cfg.KeyData = nil, nil
	}
	tc, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
}

func gpuMetricsStatus(t *testing.T, s *harness.Server, admin bool) int {
	t.Helper()
	resp, err := gpuMetricsClient(t, s, admin).Get("https://127.0.0.1:9401/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// gpuMetrics is the node's GPU metrics, read as the cluster admin: x509 authentication, and
// system:masters may get /metrics.
func gpuMetrics(t *testing.T, s *harness.Server) string {
	t.Helper()
	resp, err := gpuMetricsClient(t, s, true).Get("https://127.0.0.1:9401/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GPU metrics as the admin: %s: %s", resp.Status, body)
	}
	return string(body)
}
