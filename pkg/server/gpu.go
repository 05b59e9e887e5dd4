package server

import (
	"context"
	"os"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/agent"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// GPUInjectFile is where the hidden --gpu-mock mode reads injected driver events from.
func (s *Server) GPUInjectFile() string {
	return filepath.Join(s.Cfg.Dirs.Agent(), "gpu-mock-inject")
}

// CheckGPU validates the GPU settings against the hardware before anything is written.
func CheckGPU(cfg *config.Config) error {
	if cfg.GPU.Mode == "off" {
		return nil
	}
	lib, _ := gpuLib(cfg.GPU)
	_, _, _, _, err := agent.Check(gpuConfig(cfg), lib)
	return err
}

func gpuLib(g config.GPUOptions) (nvml.Interface, *mockgpu.Machine) {
	if g.Mock == "dgxa100" {
		m := mockgpu.DGXA100()
		return m, m
	}
	return nvml.New(nvml.WithLibraryPath(libraryPath(g.DriverRoot))), nil
}

// prepareGPU detects GPUs and NVIDIA runtimes before containerd is configured. It returns nil
// when GPU support is off or the node has no driver and no NVIDIA runtime.
func (s *Server) prepareGPU(client kubernetes.Interface) (*agent.Agent, error) {
	if s.Cfg.GPU.Mode == "off" {
		return nil, nil
	}
	lib, mock := gpuLib(s.Cfg.GPU)
	if mock != nil {
		go mock.WatchInjectFile(context.Background(), s.GPUInjectFile())
	}
	return agent.Prepare(gpuConfig(s.Cfg), lib, client, s.Log.With("component", "gpu"))
}

func gpuConfig(c *config.Config) agent.Config {
	g := c.GPU
	return agent.Config{
		NodeName: c.NodeName, Strategy: resources.Strategy(g.MIGStrategy), Replicas: g.Replicas,
		DriverRoot: g.DriverRoot, DevRoot: g.DevRoot, CDIDir: g.CDIDir, DefaultRuntime: g.DefaultRuntime,
		MetricsPort: g.MetricsPort, NodeIP: c.NodeIP, PluginDir: devicePluginDir,
		HealthQuiet: g.HealthQuiet, PathEnv: os.Getenv("PATH"), Hostname: c.NodeName,
	}
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

// gpuContainerd adds the NVIDIA runtime handlers and the CDI dir to containerd's config, and
// writes (or removes) the RuntimeClasses manifest.
func (s *Server) gpuContainerd(a *agent.Agent, cc *containerd.Config) error {
	cc.CDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}
	if d := s.Cfg.GPU.CDIDir; d != "/var/run/cdi" && d != "/etc/cdi" {
		cc.CDISpecDirs = append(cc.CDISpecDirs, d)
	}
	cc.DefaultRuntime = s.Cfg.GPU.DefaultRuntime
	manifest := filepath.Join(s.Cfg.Dirs.Manifests(), "gpu-runtimeclasses.yaml")
	var rts []gpuruntime.Runtime
	if a != nil {
		rts = a.Runtimes
	}
	for _, r := range rts {
		cc.Runtimes = append(cc.Runtimes, containerd.Runtime{Name: r.Name, BinaryName: r.Path})
	}
	if s.Joined != nil {
		if len(rts) > 0 {
			s.Log.Info("NVIDIA runtimes found: create their RuntimeClasses on a server", "runtimes", len(rts))
		}
		return nil // RuntimeClasses are cluster objects: a server's manifests make them
	}
	if len(rts) == 0 {
		if err := os.Remove(manifest); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(manifest), 0o700); err != nil {
		return err
	}
	return pki.WriteFile(manifest, []byte(gpuruntime.RuntimeClasses(rts)), 0o600)
}
