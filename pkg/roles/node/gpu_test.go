package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// Who answers NVML calls: the mock in-process before the payload is unpacked and in the helper
// after; the helper where the driver's library is; nobody where it is not.
func TestGPULib(t *testing.T) {
	root := t.TempDir()
	c := &config.Node{Dirs: datadir.Dirs{Data: filepath.Join(root, "data")}, GPU: config.GPUOptions{Mock: "dgxa100", DriverRoot: root}}
	if lib, err := gpuLib(c, ""); err != nil || lib == nil {
		t.Fatal(err)
	} else if m, ok := lib.(*mockgpu.Machine); !ok || m.StateFile != c.Dirs.GPUMockState() {
		t.Errorf("mock before unpacking: %T %+v", lib, lib)
	}
	lib, err := gpuLib(c, "/bin/dir")
	h, ok := lib.(*gpuhelper.Client)
	if err != nil || !ok || h.Path != "/bin/dir/outpost-gpu" || !slices.Equal(h.Args, []string{"--mock", "dgxa100", "--mock-inject", c.Dirs.GPUInjectFile(), "--mock-state", c.Dirs.GPUMockState()}) {
		t.Errorf("mock after unpacking: %#v %v", lib, err)
	}

	c.GPU.Mock = ""
	if lib, err := gpuLib(c, "/bin/dir"); err != nil {
		t.Fatal(err)
	} else if _, ok := lib.(gpulib.NoDriver); !ok {
		t.Errorf("no library: %T", lib)
	}
	so := filepath.Join(root, "usr/lib64", gpulib.LibraryName)
	os.MkdirAll(filepath.Dir(so), 0o755)
	os.WriteFile(so, nil, 0o644)
	lib, err = gpuLib(c, "/bin/dir")
	h, ok = lib.(*gpuhelper.Client)
	if err != nil || !ok || !slices.Equal(h.Args, []string{"--library", so}) {
		t.Errorf("driver: %#v %v", lib, err)
	}
}

// The metrics ask the kubelet's PodResources socket where its root dir puts it.
func TestPodResourcesSocket(t *testing.T) {
	for want, args := range map[string][]string{
		"/var/lib/kubelet/pod-resources/kubelet.sock": {"max-pods=42"},
		"/data/kubelet/pod-resources/kubelet.sock":    {"root-dir=/srv/k", "--root-dir=/data/kubelet"},
	} {
		if got := podResourcesSocket(args); got != want {
			t.Errorf("%v: %s, want %s", args, got, want)
		}
	}
}

// The GPU metrics are served with the kubelet's serving certificate and the cluster's client
// CA, from the node's TLS dir, and anonymously only when the config says so.
func TestGPUMetricsConfig(t *testing.T) {
	root := fakeDriver(t)
	c := &config.Node{Dirs: datadir.Dirs{Data: filepath.Join(root, "data")},
		GPU: config.GPUOptions{Mock: "dgxa100", DriverRoot: root, DevRoot: root, Replicas: 1, MetricsPort: 9401, MetricsAnonymous: true}}
	plan, err := CheckGPU(c)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Cfg: c, TLSDir: "/tls", GPU: plan, Log: slog.New(slog.DiscardHandler)}
	a, err := n.gpu(nil)
	if err != nil || a == nil {
		t.Fatalf("agent %v, err %v", a, err)
	}
	got := a.Config()
	want := metrics.TLSFiles{CertFile: "/tls/serving-kubelet.crt", KeyFile: "/tls/serving-kubelet.key", ClientCAFile: "/tls/client-ca.crt"}
	if got.MetricsTLS != want || !got.MetricsAnonymous {
		t.Errorf("metrics TLS %+v anonymous %v, want %+v true", got.MetricsTLS, got.MetricsAnonymous, want)
	}
}

// counting counts GPU detections.
type counting struct {
	gpulib.Lib
	detections int
}

func (c *counting) Detect() (*detect.Node, error) {
	c.detections++
	return c.Lib.Detect()
}

// A start detects the GPUs once, in its check step: the node's GPU layer is built from that
// plan, and a node without one refuses rather than detecting again.
func TestGPUDetectedOncePerStart(t *testing.T) {
	root := fakeDriver(t)
	c := &config.Node{NodeName: "n1", Dirs: datadir.Dirs{Data: filepath.Join(root, "data")},
		GPU: config.GPUOptions{Mode: "auto", MIGStrategy: "none", Replicas: 1, DriverRoot: root, DevRoot: root, CDIDir: filepath.Join(root, "cdi")}}
	lib := &counting{Lib: mockgpu.DGXA100()}
	plan, err := layer.Check(gpuConfig(c), lib)
	if err != nil || plan.Node == nil || len(plan.Node.GPUs) != 8 {
		t.Fatalf("check: %+v %v", plan, err)
	}
	n := &Node{Cfg: c, GPU: plan, Log: slog.New(slog.DiscardHandler),
		GPULib: func(*config.Node, string) (gpulib.Lib, error) { return lib, nil }}
	a, err := n.gpu(fake.NewClientset())
	if err != nil || a == nil || len(a.Node.GPUs) != 8 {
		t.Fatalf("gpu layer %+v %v", a, err)
	}
	if lib.detections != 1 {
		t.Errorf("%d detections in one start, want 1", lib.detections)
	}
	n.GPU = nil
	if _, err := n.gpu(fake.NewClientset()); err == nil {
		t.Error("a node without the check's plan built its GPU layer")
	}
}

// fakeDriver is a root with the mock DGX A100's device nodes and the driver's library: plain
// files do, they are only looked for.
func fakeDriver(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"dev/nvidia0", "dev/nvidia1", "dev/nvidia2", "dev/nvidia3", "dev/nvidia4", "dev/nvidia5",
		"dev/nvidia6", "dev/nvidia7", "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
