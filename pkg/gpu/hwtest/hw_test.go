package hwtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/outpostk8s/outpost/pkg/gpu/cdi"
	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/deviceplugin"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/info"
	"github.com/outpostk8s/outpost/pkg/gpu/labels"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/gpu/preflight"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// realNode reads the GPUs through the GPU helper binary named by OUTPOST_GPU_HELPER, as a node
// does, or in-process without it.
func realNode(t *testing.T) (gpulib.Lib, *detect.Node) {
	t.Helper()
	if os.Getenv("OUTPOST_REAL_GPU") != "1" {
		t.Skip("needs an NVIDIA GPU: set OUTPOST_REAL_GPU=1 on a GPU machine")
	}
	var lib gpulib.Lib = nvmllib.New(nvml.New())
	if h := os.Getenv("OUTPOST_GPU_HELPER"); h != "" {
		path := gpulib.FindLibrary("/")
		if path == "" {
			t.Fatal("no libnvidia-ml found where the node looks for it")
		}
		lib = &gpuhelper.Client{Path: h, Args: []string{"--library", path}, Stderr: os.Stderr}
		t.Logf("through the GPU helper %s, library %s", h, path)
	}
	n, err := lib.Detect()
	if err != nil {
		t.Fatalf("detect: %v", err)
	}
	if len(n.GPUs) == 0 {
		t.Fatal("driver loaded but no GPU found")
	}
	return lib, n
}

// TestDetectInfoLabels: what `outpost gpu info` prints and the labels a node gets.
func TestDetectInfoLabels(t *testing.T) {
	_, n := realNode(t)
	var b bytes.Buffer
	if err := info.Table(&b, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("gpu info:\n%s", b.String())
	for _, g := range n.GPUs {
		if !strings.HasPrefix(g.UUID, "GPU-") || g.MemoryMiB == 0 || g.PCIBusID == "" || g.Product == "" {
			t.Errorf("GPU %d incomplete: %+v", g.Index, g)
		}
	}
	if n.DriverVersion == "" || n.CUDADriverMajor == 0 {
		t.Errorf("driver %q CUDA %d.%d", n.DriverVersion, n.CUDADriverMajor, n.CUDADriverMinor)
	}
	// What MIG layouts resolve against (read only: the machine's MIG mode is not changed). Some
	// drivers list profiles only with MIG on; the agent then resolves in a second pass.
	for _, g := range n.GPUs {
		var names []string
		for _, p := range g.MIGProfiles {
			names = append(names, fmt.Sprintf("%s(id %d, max %d, %d placements)", p.Name, p.ID, p.Max, len(p.Placements)))
		}
		t.Logf("GPU %d: MIG capable %v, enabled %v, pending %v, profiles listed: %v", g.Index, g.MIGCapable, g.MIGEnabled, g.MIGPending, names)
	}
	l := labels.For(n, resources.Config{Strategy: resources.None, Replicas: 1})
	t.Logf("labels: %v", l)
	if l["nvidia.com/gpu.present"] != "true" || l["nvidia.com/gpu.count"] == "0" || l["nvidia.com/gpu.product"] == "" {
		t.Errorf("labels %v", l)
	}
}

// TestCDISpec: NVIDIA's generator, through the helper, gives a spec the CDI library accepts,
// naming existing device nodes and files, with the video libraries and the hooks.
func TestCDISpec(t *testing.T) {
	lib, _ := realNode(t)
	hook := os.Getenv("OUTPOST_GPU_HELPER")
	if hook == "" {
		hook = "/usr/bin/nvidia-cdi-hook"
	}
	got, err := lib.CDISpec(gpulib.CDIOptions{DriverRoot: "/", DevRoot: "/", HookPath: hook})
	if err != nil {
		t.Fatalf("CDI: %v", err)
	}
	p, err := cdi.Write(got.YAML, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec, err := cdiapi.ReadSpec(p, 0)
	if err != nil {
		t.Fatalf("the CDI library refuses the spec: %v", err)
	}
	edits := spec.ContainerEdits
	for _, d := range edits.DeviceNodes {
		if _, err := os.Stat(d.HostPath); err != nil {
			t.Errorf("device node %s: %v", d.HostPath, err)
		}
	}
	found := map[string]bool{}
	for _, m := range edits.Mounts {
		if _, err := os.Stat(m.HostPath); err != nil {
			t.Errorf("mount %s: %v", m.HostPath, err)
		}
		for _, l := range []string{"libcuda.so", "libnvidia-ml.so", "libnvcuvid.so", "libnvidia-encode.so", "libnvidia-opticalflow.so", "libEGL_nvidia.so", "libGLX_nvidia.so", "nvidia_icd.json", "/firmware/", "socket"} {
			if strings.Contains(m.ContainerPath, l) {
				found[l] = true
			}
		}
	}
	for _, l := range []string{"libcuda.so", "libnvidia-ml.so", "libnvcuvid.so", "libnvidia-encode.so"} {
		if !found[l] {
			t.Errorf("%s not in the spec", l)
		}
	}
	var hooks []string
	for _, h := range edits.Hooks {
		if len(h.Args) > 1 {
			hooks = append(hooks, h.Args[1])
		}
	}
	t.Logf("CDI: %d devices, %d common device nodes, %d mounts, hooks %v, classes found %v, %d generator warnings",
		len(spec.Devices), len(edits.DeviceNodes), len(edits.Mounts), hooks, found, len(got.Warnings))
	t.Logf("spec:\n%s", got.YAML)
}

// TestDevicePlugin: the plugin registers, lists every real GPU healthy, and Allocate answers
// with the GPUs' CDI names and UUIDs; time-slicing multiplies the list.
func TestDevicePlugin(t *testing.T) {
	_, n := realNode(t)
	for _, replicas := range []int{1, 4} {
		rs, err := resources.Build(n, resources.Config{Strategy: resources.None, Replicas: replicas})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		k := gputest.StartKubelet(t, dir)
		links := map[string][]string{}
		for _, g := range n.GPUs {
			links[g.PCIBusID] = g.NVLinkPeers
		}
		p := deviceplugin.New(rs[0], dir, links, nil)
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if k.Count() != 1 || k.Requests()[0].ResourceName != "nvidia.com/gpu" {
			t.Fatalf("registration %v", k.Requests())
		}
		conn, err := grpc.NewClient("unix://"+filepath.Join(dir, p.Socket()), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c := pluginapi.NewDevicePluginClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		list, err := stream.Recv()
		if err != nil || len(list.Devices) != len(n.GPUs)*replicas {
			t.Fatalf("replicas %d: listed %v (%v), want %d", replicas, list, err, len(n.GPUs)*replicas)
		}
		start := time.Now()
		resp, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: []string{list.Devices[0].ID}}}})
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		cr := resp.ContainerResponses[0]
		if cr.Envs["NVIDIA_VISIBLE_DEVICES"] != n.GPUs[0].UUID || len(cr.CdiDevices) != 1 || cr.CdiDevices[0].Name != "nvidia.com/gpu=0" {
			t.Errorf("allocate: env %v CDI %v", cr.Envs, cr.CdiDevices)
		}
		t.Logf("replicas %d: %d devices listed, Allocate %v -> %v %v", replicas, len(list.Devices), took, cr.Envs, cr.CdiDevices)
		cancel()
		conn.Close()
		p.Stop()
	}
}

// TestMetricsAndEvents: live values under dcgm-exporter's names; the driver accepts the XID and
// ECC event registration the health monitor uses.
func TestMetricsAndEvents(t *testing.T) {
	lib, _ := realNode(t)
	if err := lib.Open(); err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	var b bytes.Buffer
	if err := (metrics.Source{Lib: lib, Hostname: "hw", XIDs: func(string) uint64 { return 0 }}).Write(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("metrics:\n%s", b.String())
	for _, m := range metrics.All {
		if !strings.Contains(b.String(), "\n"+m+"{") {
			t.Errorf("metric %s missing", m)
		}
	}
	ev, ok, err := lib.NextEvent(500 * time.Millisecond)
	if err != nil {
		t.Fatalf("event wait: %v", err)
	}
	t.Logf("event wait 500ms: got=%v %+v", ok, ev)
}

// TestPreflight prints what check-config reports on this machine.
func TestPreflight(t *testing.T) {
	lib, _ := realNode(t)
	for _, c := range preflight.Checks("/", lib) {
		t.Logf("%+v", c)
	}
}
