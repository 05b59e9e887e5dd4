// Package cdi writes a Container Device Interface spec for the node's GPUs, from the device
// nodes and driver files found under a driver root, so GPU containers work with or without the
// NVIDIA container toolkit: containerd applies the edits for the CDI names the device plugin
// returns.
package cdi

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Kind is the CDI vendor/class of every device in the spec.
const Kind = "nvidia.com/gpu"

// Version of the CDI spec format written.
const Version = "0.6.0"

// Spec is the CDI document (the subset Outpost writes).
type Spec struct {
	CDIVersion     string         `json:"cdiVersion"`
	Kind           string         `json:"kind"`
	Devices        []Device       `json:"devices"`
	ContainerEdits ContainerEdits `json:"containerEdits"`
}

// Device is one named device.
type Device struct {
	Name           string         `json:"name"`
	ContainerEdits ContainerEdits `json:"containerEdits"`
}

// ContainerEdits are what the runtime adds to a container.
type ContainerEdits struct {
	Env         []string     `json:"env,omitempty"`
	DeviceNodes []DeviceNode `json:"deviceNodes,omitempty"`
	Mounts      []Mount      `json:"mounts,omitempty"`
}

// DeviceNode is a /dev entry.
type DeviceNode struct {
	Path     string `json:"path"`
	HostPath string `json:"hostPath,omitempty"`
}

// Mount is a bind mount of a host file.
type Mount struct {
	HostPath      string   `json:"hostPath"`
	ContainerPath string   `json:"containerPath"`
	Options       []string `json:"options"`
}

// Libraries every CUDA container may need; the versioned files and their .so.1 links.
var Libraries = []string{"libnvidia-ml.so", "libcuda.so", "libcudadebugger.so", "libnvidia-ptxjitcompiler.so",
	"libnvidia-nvvm.so", "libnvidia-cfg.so", "libnvidia-opencl.so", "libnvidia-gpucomp.so", "libnvidia-allocator.so"}

// Binaries containers get when present.
var Binaries = []string{"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"}

var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/lib64"}
var binDirs = []string{"/usr/bin", "/usr/local/bin", "/usr/sbin"}
var controlNodes = []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}

// Generate builds the spec. driverRoot holds the driver's files (/ on most hosts, a container
// image root with some operators); devRoot holds /dev.
func Generate(n *detect.Node, driverRoot, devRoot string) (*Spec, error) {
	s := &Spec{CDIVersion: Version, Kind: Kind}
	var all []DeviceNode
	for _, g := range n.GPUs {
		node := DeviceNode{Path: fmt.Sprintf("/dev/nvidia%d", g.Minor), HostPath: filepath.Join(devRoot, fmt.Sprintf("/dev/nvidia%d", g.Minor))}
		if !exists(node.HostPath) {
			return nil, fmt.Errorf("GPU %d: device node %s is missing: is the driver loaded (nvidia-modprobe)?", g.Index, node.HostPath)
		}
		all = append(all, node)
		s.Devices = append(s.Devices,
			Device{Name: fmt.Sprint(g.Index), ContainerEdits: ContainerEdits{DeviceNodes: []DeviceNode{node}}},
			Device{Name: g.UUID, ContainerEdits: ContainerEdits{DeviceNodes: []DeviceNode{node}}})
		for _, m := range g.MIG {
			edits := ContainerEdits{DeviceNodes: append([]DeviceNode{node}, migCaps(devRoot, g.Minor, m)...)}
			s.Devices = append(s.Devices, Device{Name: fmt.Sprintf("%d:%d", g.Index, m.GPUInstanceID), ContainerEdits: edits})
		}
	}
	s.Devices = append(s.Devices, Device{Name: "all", ContainerEdits: ContainerEdits{DeviceNodes: all}})
	for _, c := range controlNodes {
		if h := filepath.Join(devRoot, c); exists(h) {
			s.ContainerEdits.DeviceNodes = append(s.ContainerEdits.DeviceNodes, DeviceNode{Path: c, HostPath: h})
		}
	}
	libs, err := findLibraries(driverRoot, n.DriverVersion)
	if err != nil {
		return nil, err
	}
	s.ContainerEdits.Mounts = append(libs, findBinaries(driverRoot)...)
	return s, nil
}

// migCaps are the /dev/nvidia-caps nodes granting access to one MIG device, when present.
func migCaps(devRoot string, gpuMinor int, m detect.MIGDevice) []DeviceNode {
	var out []DeviceNode
	minors := readMigMinors(devRoot)
	for _, key := range []string{
		fmt.Sprintf("gpu%d/gi%d/access", gpuMinor, m.GPUInstanceID),
		fmt.Sprintf("gpu%d/gi%d/ci%d/access", gpuMinor, m.GPUInstanceID, m.ComputeInstanceID),
	} {
		if minor, ok := minors[key]; ok {
			p := fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", minor)
			if h := filepath.Join(devRoot, p); exists(h) {
				out = append(out, DeviceNode{Path: p, HostPath: h})
			}
		}
	}
	return out
}

// readMigMinors parses /proc/driver/nvidia-caps/mig-minors: "gpu0/gi1/access 12" per line.
func readMigMinors(root string) map[string]int {
	m := map[string]int{}
	b, err := os.ReadFile(filepath.Join(root, "/proc/driver/nvidia-caps/mig-minors"))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		var key string
		var minor int
		if _, err := fmt.Sscanf(line, "%s %d", &key, &minor); err == nil {
			m[key] = minor
		}
	}
	return m
}

// findLibraries mounts each library's files (and .so.1 links, resolved) at their own paths.
func findLibraries(root, driverVersion string) ([]Mount, error) {
	var out []Mount
	seen := map[string]bool{}
	for _, lib := range Libraries {
		found := false
		for _, dir := range libDirs {
			matches, _ := filepath.Glob(filepath.Join(root, dir, lib+".*"))
			sort.Strings(matches)
			for _, host := range matches {
				cpath := strings.TrimPrefix(host, filepath.Clean(root))
				if root == "/" {
					cpath = host
				}
				if seen[cpath] {
					continue
				}
				real, err := filepath.EvalSymlinks(host)
				if err != nil {
					continue // dangling link
				}
				seen[cpath] = true
				found = true
				out = append(out, Mount{HostPath: real, ContainerPath: cpath, Options: []string{"ro", "nosuid", "nodev", "bind"}})
			}
		}
		if !found && lib == "libnvidia-ml.so" {
			return nil, fmt.Errorf("libnvidia-ml.so not found under %s (driver %s): set --nvidia-driver-root to where the driver is installed", root, driverVersion)
		}
	}
	return out, nil
}

func findBinaries(root string) []Mount {
	var out []Mount
	for _, b := range Binaries {
		for _, dir := range binDirs {
			host := filepath.Join(root, dir, b)
			if exists(host) {
				out = append(out, Mount{HostPath: host, ContainerPath: filepath.Join(dir, b), Options: []string{"ro", "nosuid", "nodev", "bind"}})
				break
			}
		}
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Write stores the spec as dir/nvidia.yaml, atomically.
func Write(s *Spec, dir string) (string, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("CDI spec: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("CDI spec dir: %w", err)
	}
	p := filepath.Join(dir, "nvidia.yaml")
	return p, pki.WriteFile(p, b, 0o644)
}
