// Package nvcdispec generates the node's CDI spec as NVIDIA generates it: with
// nvidia-container-toolkit's pkg/nvcdi over NVML, so the spec holds every library and file class
// the toolkit knows (compute, utility, video, graphics, IPC sockets, firmware) and its hooks
// (symlinks, the container's ld.so cache). It is linked only into the GPU helper, which already
// holds NVML; the helper itself answers the hooks as nvidia-cdi-hook (cmd/outpost-gpu), so a host
// needs no toolkit binary.
package nvcdispec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/nvidia-container-toolkit/pkg/nvcdi"
	"github.com/NVIDIA/nvidia-container-toolkit/pkg/nvcdi/transform"
	"sigs.k8s.io/yaml"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// Generate writes the spec for every GPU, MIG device and "all", named as Outpost's device
// plugin names them: a GPU by its index and UUID, a MIG device by "<GPU index>:<GPU instance>"
// and its UUID. The spec is checked with the CDI library's own validation before it is
// returned. With no device at all (every GPU in MIG mode, no MIG device yet, as after a
// reboot) the spec is empty: nothing to write, not an error.
func Generate(lib nvml.Interface, o gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	raw, warnings, err := generate(lib, o)
	if err != nil {
		return nil, err
	}
	return finish(raw, warnings)
}

// generate runs NVIDIA's generator.
func generate(lib nvml.Interface, o gpulib.CDIOptions) (*specs.Spec, []string, error) {
	if r := lib.Init(); r != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("NVML init: %w", r)
	}
	defer lib.Shutdown()
	log := &collect{}
	migNames, err := migNames(lib, log)
	if err != nil {
		return nil, nil, err
	}
	uuids, err := nvcdi.NewDeviceNamer(nvcdi.DeviceNameStrategyUUID)
	if err != nil {
		return nil, nil, fmt.Errorf("CDI device namer: %w", err)
	}
	opts := []nvcdi.Option{
		nvcdi.WithNvmlLib(lib),
		nvcdi.WithMode(nvcdi.ModeNvml),
		nvcdi.WithDriverRoot(o.DriverRoot),
		nvcdi.WithDevRoot(o.DevRoot),
		nvcdi.WithNVIDIACDIHookPath(o.HookPath),
		nvcdi.WithDeviceNamers(outpostNamer{mig: migNames}, uuids),
		nvcdi.WithLogger(log),
		// "all" is every device's edits merged, as nvidia-ctk cdi generate writes it.
		nvcdi.WithMergedDeviceOptions(transform.WithName("all"), transform.WithSkipIfExists(true)),
		// That hook acts only on NVIDIA_GPU_MEMORY_LIMIT, which Outpost does not offer; without
		// this, every GPU container start would run the helper once per GPU for nothing.
		nvcdi.WithDisabledHooks("apply-cuda-memory-limits"),
	}
	if o.NoSandboxUtils {
		opts = append(opts, nvcdi.WithFeatureFlags(nvcdi.FeatureDisableNvsandboxUtils))
	}
	gen, err := nvcdi.New(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("CDI generator: %w", err)
	}
	s, err := gen.GetSpec()
	if err != nil {
		return nil, nil, fmt.Errorf("CDI spec: %w", err)
	}
	raw := s.Raw()
	raw.ContainerEdits.Env = dropVoidVisibleDevices(raw.ContainerEdits.Env)
	return raw, log.warnings(), nil
}

// finish marshals the spec and checks it as containerd will; a device with no edits (an "all"
// merged from nothing) is dropped, and a spec left with no device is empty.
func finish(raw *specs.Spec, warnings []string) (*gpulib.CDISpec, error) {
	kept := raw.Devices[:0]
	for _, d := range raw.Devices {
		if e := d.ContainerEdits; len(e.DeviceNodes)+len(e.Mounts)+len(e.Env)+len(e.Hooks) > 0 {
			kept = append(kept, d)
		}
	}
	raw.Devices = kept
	if len(raw.Devices) == 0 {
		return &gpulib.CDISpec{Warnings: warnings}, nil
	}
	b, err := yaml.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("CDI spec: %w", err)
	}
	if err := Validate(b); err != nil {
		return nil, err
	}
	return &gpulib.CDISpec{YAML: b, Warnings: warnings}, nil
}

// Validate makes the check containerd's CDI cache makes when it loads the file: the CDI
// library reads it from a file of its own and validates it (ReadSpec is the library's only
// exported way to its validation, hence the temporary file).
func Validate(spec []byte) error {
	dir, err := os.MkdirTemp("", "outpost-cdi-")
	if err != nil {
		return fmt.Errorf("CDI spec check: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "nvidia.yaml")
	if err := os.WriteFile(p, spec, 0o600); err != nil {
		return fmt.Errorf("CDI spec check: %w", err)
	}
	if _, err := cdiapi.ReadSpec(p, 0); err != nil {
		return fmt.Errorf("the CDI library refuses the spec: %w", err)
	}
	return nil
}

// dropVoidVisibleDevices removes the NVIDIA_VISIBLE_DEVICES=void nvcdi adds to every container:
// Outpost's device plugin sets the variable to the devices it allocated, which tools in the
// container read; CDI's edits would overwrite it.
func dropVoidVisibleDevices(env []string) []string {
	out := env[:0]
	for _, e := range env {
		if e != "NVIDIA_VISIBLE_DEVICES=void" {
			out = append(out, e)
		}
	}
	return out
}

// migNames maps each MIG device's UUID to its Outpost name, "<GPU index>:<GPU instance ID>".
// A second compute instance in one GPU instance (made outside Outpost, whose layouts make one)
// gets no such name, only its UUID: the device plugin cannot tell the two apart.
func migNames(lib nvml.Interface, log *collect) (map[string]string, error) {
	out := map[string]string{}
	taken := map[string]bool{}
	n, r := lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML device count: %w", r)
	}
	for i := 0; i < n; i++ {
		dev, r := lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			return nil, fmt.Errorf("GPU %d: %w", i, r)
		}
		if cur, _, r := dev.GetMigMode(); r != nvml.SUCCESS || cur != nvml.DEVICE_MIG_ENABLE {
			continue
		}
		slots, r := dev.GetMaxMigDeviceCount()
		if r != nvml.SUCCESS {
			return nil, fmt.Errorf("GPU %d: MIG device count: %w", i, r)
		}
		for j := 0; j < slots; j++ {
			m, r := dev.GetMigDeviceHandleByIndex(j)
			if r == nvml.ERROR_NOT_FOUND || r == nvml.ERROR_INVALID_ARGUMENT {
				continue
			} else if r != nvml.SUCCESS {
				return nil, fmt.Errorf("GPU %d: MIG device %d: %w", i, j, r)
			}
			uuid, r := m.GetUUID()
			if r != nvml.SUCCESS {
				return nil, fmt.Errorf("GPU %d: MIG device %d: UUID: %w", i, j, r)
			}
			gi, r := m.GetGpuInstanceId()
			if r != nvml.SUCCESS {
				return nil, fmt.Errorf("GPU %d: MIG device %d: GPU instance: %w", i, j, r)
			}
			name := fmt.Sprintf("%d:%d", i, gi)
			if taken[name] {
				log.Warningf("GPU %d: GPU instance %d has more than one compute instance: %s is named by its UUID only", i, gi, uuid)
				continue
			}
			taken[name] = true
			out[uuid] = name
		}
	}
	return out, nil
}

// outpostNamer names devices as resources.Device.CDIName does.
type outpostNamer struct{ mig map[string]string }

func (outpostNamer) GetDeviceName(i int, _ nvcdi.UUIDer) (string, error) { return strconv.Itoa(i), nil }

func (n outpostNamer) GetMigDeviceName(_ int, _ nvcdi.UUIDer, _ int, mig nvcdi.UUIDer) (string, error) {
	uuid, err := mig.GetUUID()
	if err != nil {
		return "", fmt.Errorf("MIG device UUID: %w", err)
	}
	// "" leaves the device its UUID name alone: a second compute instance, or a MIG device
	// made while the spec was generated (the next layout change writes the spec again).
	return n.mig[uuid], nil
}

// collect keeps the toolkit's warnings and errors for the caller to log; its progress lines
// (driver version, each file found) are dropped.
type collect struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *collect) add(level, f string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(&c.buf, "%s: %s\n", level, fmt.Sprintf(f, a...))
}

// warnings are the lines collected, each once, in the order first seen.
func (c *collect) warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(c.buf.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func (c *collect) Debugf(string, ...any)       {}
func (c *collect) Tracef(string, ...any)       {}
func (c *collect) Infof(string, ...any)        {}
func (c *collect) Warningf(f string, a ...any) { c.add("warning", f, a...) }
func (c *collect) Errorf(f string, a ...any)   { c.add("error", f, a...) }
