// Package resources turns a node's GPUs into the extended resources the device plugin
// advertises, by MIG strategy (none, single, mixed) and time-slicing replicas.
package resources

import (
	"fmt"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

// Strategy is how MIG devices are exposed.
type Strategy string

const (
	None   Strategy = "none"   // whole GPUs as nvidia.com/gpu, MIG mode ignored
	Single Strategy = "single" // every GPU in MIG mode with one profile: MIG devices as nvidia.com/gpu
	Mixed  Strategy = "mixed"  // MIG devices as nvidia.com/mig-<profile>, other GPUs as nvidia.com/gpu
)

// GPUResource is the whole-GPU resource name.
const GPUResource = "nvidia.com/gpu"

// ParseStrategy validates a strategy name.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case None, Single, Mixed:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("MIG strategy %q is not one of none, single, mixed", s)
}

// Config is the plugin's slice of the GPU config.
type Config struct {
	Strategy Strategy
	Replicas int // time-slicing: each device is advertised this many times (1: no sharing)
	// Sharing, when set, gives per-resource replicas and names (the device plugin's format);
	// resources it does not list keep Replicas.
	Sharing *sharing.Config
}

// Device is one allocatable unit.
type Device struct {
	ID       string // unique device ID the kubelet sees; "::N" suffix for time-slice replicas
	Visible  string // what NVIDIA_VISIBLE_DEVICES names: a GPU or MIG UUID
	CDIName  string // fully qualified CDI device name
	GPUIndex int
	BusID    string // of the physical GPU, for NVLink-aware preferred allocation
}

// Resource is one extended resource and its devices.
type Resource struct {
	Name    string
	Devices []Device
}

// Build computes the resources, or says why the hardware cannot honour the strategy.
func Build(n *detect.Node, c Config) ([]Resource, error) {
	if c.Replicas < 1 {
		return nil, fmt.Errorf("time-slicing replicas must be 1 or more, got %d", c.Replicas)
	}
	byName := map[string][]Device{}
	switch c.Strategy {
	case None, "":
		for _, g := range n.GPUs {
			byName[GPUResource] = append(byName[GPUResource], wholeGPU(g))
		}
	case Single:
		profile := ""
		for _, g := range n.GPUs {
			if !g.MIGEnabled || len(g.MIG) == 0 {
				return nil, fmt.Errorf("MIG strategy single needs every GPU in MIG mode with MIG devices; GPU %d (%s) has none: partition it (nvidia-smi mig) or use --gpu-mig-strategy none or mixed", g.Index, g.Product)
			}
			for _, m := range g.MIG {
				if profile == "" {
					profile = m.Profile
				} else if m.Profile != profile {
					return nil, fmt.Errorf("MIG strategy single needs one MIG profile on every GPU; found %s and %s: use --gpu-mig-strategy mixed", profile, m.Profile)
				}
				byName[GPUResource] = append(byName[GPUResource], migDevice(g, m))
			}
		}
	case Mixed:
		capable := false
		for _, g := range n.GPUs {
			capable = capable || g.MIGCapable
			if !g.MIGEnabled {
				byName[GPUResource] = append(byName[GPUResource], wholeGPU(g))
				continue
			}
			for _, m := range g.MIG {
				name := "nvidia.com/mig-" + m.Profile
				byName[name] = append(byName[name], migDevice(g, m))
			}
		}
		if !capable && len(n.GPUs) > 0 {
			return nil, fmt.Errorf("MIG strategy mixed needs a MIG-capable GPU; this node's %s has none: use --gpu-mig-strategy none", n.GPUs[0].Product)
		}
	default:
		return nil, fmt.Errorf("MIG strategy %q is not one of none, single, mixed", c.Strategy)
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Resource, 0, len(names))
	from := map[string]string{}
	for _, name := range names {
		replicas, advertised := c.Sharing.For(name)
		if replicas == 0 {
			replicas = c.Replicas
		}
		if prev, ok := from[advertised]; ok {
			return nil, fmt.Errorf("GPU sharing config: %s and %s would both be advertised as %s: rename one", prev, name, advertised)
		}
		from[advertised] = name
		out = append(out, Resource{Name: advertised, Devices: replicate(byName[name], replicas)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func wholeGPU(g detect.GPU) Device {
	return Device{ID: g.UUID, Visible: g.UUID, CDIName: fmt.Sprintf("nvidia.com/gpu=%d", g.Index), GPUIndex: g.Index, BusID: g.PCIBusID}
}

func migDevice(g detect.GPU, m detect.MIGDevice) Device {
	return Device{ID: m.ID, Visible: m.ID, CDIName: fmt.Sprintf("nvidia.com/gpu=%d:%d", g.Index, m.GPUInstanceID),
		GPUIndex: g.Index, BusID: g.PCIBusID}
}

// replicate advertises each device n times for time-slicing.
func replicate(devs []Device, n int) []Device {
	if n == 1 {
		return devs
	}
	out := make([]Device, 0, len(devs)*n)
	for _, d := range devs {
		for k := 0; k < n; k++ {
			r := d
			r.ID = fmt.Sprintf("%s::%d", d.ID, k)
			out = append(out, r)
		}
	}
	return out
}

// BaseID strips a time-slice replica suffix.
func BaseID(id string) string {
	if i := strings.Index(id, "::"); i >= 0 {
		return id[:i]
	}
	return id
}
