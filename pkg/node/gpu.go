package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/agent"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// CheckGPU validates the GPU settings against the hardware, writing nothing: the command runs
// it before it touches the data dir.
func CheckGPU(c *config.Node) error {
	if c.GPU.Mode == "off" {
		return nil
	}
	_, _, _, _, err := agent.Check(gpuConfig(c), gpuLib(c.GPU))
	return err
}

func gpuLib(g config.GPUOptions) nvml.Interface {
	if g.Mock == "dgxa100" {
		return mockgpu.DGXA100()
	}
	return nvml.New(nvml.WithLibraryPath(libraryPath(g.DriverRoot)))
}

// gpu detects GPUs and NVIDIA runtimes before containerd is configured. It returns nil when
// GPU support is off or the node has no driver and no NVIDIA runtime.
func (n *Node) gpu(client kubernetes.Interface) (*agent.Agent, error) {
	if n.Cfg.GPU.Mode == "off" {
		return nil, nil
	}
	return agent.New(gpuConfig(n.Cfg), gpuLib(n.Cfg.GPU), client, n.Log.With("component", "gpu"))
}

func gpuConfig(c *config.Node) agent.Config {
	g := c.GPU
	cfg := agent.Config{
		NodeName: c.NodeName, Strategy: resources.Strategy(g.MIGStrategy), Replicas: g.Replicas,
		DriverRoot: g.DriverRoot, DevRoot: g.DevRoot, CDIDir: g.CDIDir, DefaultRuntime: g.DefaultRuntime,
		MetricsPort: g.MetricsPort, NodeIP: c.NodeIP, PluginDir: devicePluginDir,
		HealthQuiet: g.HealthQuiet, PathEnv: os.Getenv("PATH"), Hostname: c.NodeName,
	}
	if g.Mock != "" {
		cfg.InjectFile = c.Dirs.GPUInjectFile()
	}
	return cfg
}

// libraryPath finds libnvidia-ml under a driver root other than /; under / the loader's own
// search finds it.
func libraryPath(root string) string {
	const lib = "libnvidia-ml.so.1"
	if root == "" || root == "/" {
		return lib
	}
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/lib", "usr/lib/aarch64-linux-gnu"} {
		if p := filepath.Join(root, d, lib); fileExists(p) {
			return p
		}
	}
	return lib
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// devicePluginDir is where the kubelet's device manager listens: fixed by the kubelet,
// whatever its --root-dir.
const devicePluginDir = "/var/lib/kubelet/device-plugins"

// gpuContainerd adds the NVIDIA runtime handlers and the CDI dirs to containerd's config and
// returns the runtimes found.
func gpuContainerd(g config.GPUOptions, a *agent.Agent, cc *containerd.Config) []gpuruntime.Runtime {
	cc.CDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}
	if d := g.CDIDir; d != "/var/run/cdi" && d != "/etc/cdi" {
		cc.CDISpecDirs = append(cc.CDISpecDirs, d)
	}
	cc.DefaultRuntime = g.DefaultRuntime
	if a == nil {
		return nil
	}
	for _, r := range a.Runtimes {
		cc.Runtimes = append(cc.Runtimes, containerd.Runtime{Name: r.Name, BinaryName: r.Path})
	}
	return a.Runtimes
}

// runtimeClasses writes a server's RuntimeClasses manifest for the NVIDIA runtimes its node
// found, or removes it when there are none (the deploy controller applies the dir).
type runtimeClasses struct {
	path     string
	runtimes []gpuruntime.Runtime
}

var _ component.Component = (*runtimeClasses)(nil)

func (r *runtimeClasses) Name() string                { return "gpu-runtimeclasses" }
func (r *runtimeClasses) Start(context.Context) error { return nil }
func (r *runtimeClasses) Stop(context.Context) error  { return nil }

func (r *runtimeClasses) Init(context.Context) error {
	if len(r.runtimes) == 0 {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove RuntimeClasses manifest: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return fmt.Errorf("manifests dir: %w", err)
	}
	return pki.WriteFile(r.path, []byte(gpuruntime.RuntimeClasses(r.runtimes)), 0o600)
}
