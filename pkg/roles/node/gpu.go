package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/roles"
)

// CheckGPU detects the GPUs and validates the GPU settings against them before the command
// touches the data dir; the plan it returns is what the node's GPU layer is built from (Node.GPU),
// so a start detects once. nil with GPU support off. On a host with libnvidia-ml it finds the
// payload first: the GPU helper that reads NVML is in it.
func CheckGPU(c *config.Node) (*layer.Plan, error) {
	if c.GPU.Mode == "off" {
		return nil, nil
	}
	lib, err := gpuLib(c, "")
	if err != nil {
		return nil, err
	}
	return layer.Check(gpuConfig(c), lib)
}

// gpuLib is what answers the GPU layer's NVML calls. The mock: in-process for the check, and
// in the GPU helper once the payload is unpacked, so the agent's path through the helper is the
// one the tests take. A real driver: the GPU helper, started only where libnvidia-ml exists.
// binDir "": the payload's beside this program (a check before the node runs).
func gpuLib(c *config.Node, binDir string) (gpulib.Lib, error) {
	g := c.GPU
	if g.Mock == "dgxa100" {
		if binDir == "" {
			m := mockgpu.DGXA100()
			m.StateFile, m.InjectFile = c.Dirs.GPUMockState(), c.Dirs.GPUInjectFile()
			return m, nil
		}
		return &gpuhelper.Client{Path: filepath.Join(binDir, gpuhelper.BinaryName), Stderr: os.Stderr,
			Args: []string{"--mock", "dgxa100", "--mock-inject", c.Dirs.GPUInjectFile(), "--mock-state", c.Dirs.GPUMockState()}}, nil
	}
	return DriverGPULib(g.DriverRoot, binDir)
}

// DriverGPULib is the GPU helper for the driver under driverRoot, or gpulib.NoDriver where
// there is no libnvidia-ml. binDir "" means the payload's beside this program; finding it
// changes nothing (data/current is the node run's to point).
func DriverGPULib(driverRoot, binDir string) (gpulib.Lib, error) {
	lib := gpulib.FindLibrary(driverRoot)
	if lib == "" {
		return gpulib.NoDriver{}, nil
	}
	if binDir == "" {
		var err error
		if binDir, err = roles.PayloadBin(""); err != nil {
			return nil, fmt.Errorf("the GPU helper is in the payload: %w", err)
		}
	}
	return &gpuhelper.Client{Path: filepath.Join(binDir, gpuhelper.BinaryName), Stderr: os.Stderr,
		Args: []string{"--library", lib}}, nil
}

// gpu detects GPUs and NVIDIA runtimes before containerd is configured. It returns nil when
// GPU support is off or the node has no driver and no NVIDIA runtime.
func (n *Node) gpu(client kubernetes.Interface) (*layer.Layer, error) {
	if n.Cfg.GPU.Mode == "off" {
		return nil, nil
	}
	if n.GPU == nil {
		return nil, errors.New("GPU support is on but no GPU plan was given: the role's check step (CheckGPU) runs first")
	}
	libFor := n.GPULib
	if libFor == nil {
		libFor = gpuLib
	}
	lib, err := libFor(n.Cfg, n.BinDir)
	if err != nil {
		return nil, err
	}
	cfg := gpuConfig(n.Cfg)
	cfg.HelperPath = filepath.Join(n.BinDir, gpuhelper.BinaryName)
	// The metrics are served as the kubelet serves: its certificate, the cluster's client CA.
	cfg.MetricsTLS = metrics.TLSFiles{CertFile: filepath.Join(n.TLSDir, pki.KubeletServing+".crt"),
		KeyFile: filepath.Join(n.TLSDir, pki.KubeletServing+".key"), ClientCAFile: filepath.Join(n.TLSDir, pki.ClientCA+".crt")}
	return layer.New(cfg, n.GPU, lib, client, n.Log.With("component", "gpu"))
}

func gpuConfig(c *config.Node) layer.Config {
	g := c.GPU
	return layer.Config{
		NodeName: c.NodeName, Strategy: resources.Strategy(g.MIGStrategy), Replicas: g.Replicas,
		DriverRoot: g.DriverRoot, DevRoot: g.DevRoot, CDIDir: g.CDIDir, DefaultRuntime: g.DefaultRuntime,
		MetricsPort: g.MetricsPort, MetricsAnonymous: g.MetricsAnonymous, NodeIP: c.NodeIP, PluginDir: devicePluginDir,
		HealthQuiet: g.HealthQuiet, PathEnv: os.Getenv("PATH"), Hostname: c.NodeName,
		MachineFile: "/sys/class/dmi/id/product_name", PodResourcesSocket: podResourcesSocket(c.KubeletArgs),
		Sharing: g.Sharing, MIGConfig: g.MIGConfig, MIGLayouts: g.MIGLayouts,
	}
}

// podResourcesSocket is the kubelet's PodResources socket, under its root dir: the default, or
// a --kubelet-arg root-dir= the user gave (the last one wins, as for the kubelet's flags).
func podResourcesSocket(kubeletArgs []string) string {
	root := "/var/lib/kubelet"
	for _, a := range kubeletArgs {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "root-dir="); ok {
			root = v
		}
	}
	return filepath.Join(root, "pod-resources", "kubelet.sock")
}

// devicePluginDir is where the kubelet's device manager listens: fixed by the kubelet,
// whatever its --root-dir.
const devicePluginDir = "/var/lib/kubelet/device-plugins"

// gpuContainerd adds the NVIDIA runtime handlers and the CDI dirs to containerd's config. The
// GPU layer labels the Node per runtime; the servers make the RuntimeClasses from the labels.
func gpuContainerd(g config.GPUOptions, a *layer.Layer, cc *containerd.Config) {
	cc.CDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}
	if d := g.CDIDir; d != "/var/run/cdi" && d != "/etc/cdi" {
		cc.CDISpecDirs = append(cc.CDISpecDirs, d)
	}
	cc.DefaultRuntime = g.DefaultRuntime
	if a == nil {
		return
	}
	for _, r := range a.Runtimes {
		cc.Runtimes = append(cc.Runtimes, containerd.Runtime{Name: r.Name, BinaryName: r.Path})
	}
}
