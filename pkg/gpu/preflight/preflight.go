// Package preflight checks a GPU host for `outpost check-config`: kernel module, NVML library
// and its version against the module, persistence mode, MIG mode, and on NVSwitch systems
// (DGX/HGX) the fabric manager. Reads go through a filesystem root so tests use a fake one.
package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

var moduleVersion = regexp.MustCompile(`Kernel Module\s+(?:for \S+\s+)?([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)

// Checks returns one line per GPU check; none when the host shows no sign of an NVIDIA GPU.
// lib is nil when no libnvidia-ml was found (the GPU helper is then not started at all).
func Checks(root string, lib gpulib.Lib) []hostcheck.Check {
	raw, modErr := os.ReadFile(filepath.Join(root, "/proc/driver/nvidia/version"))
	libErr := fmt.Errorf("%s not found", gpulib.LibraryName)
	var p *gpulib.Preflight
	if lib != nil {
		p, libErr = lib.Preflight()
	}
	if modErr != nil && libErr != nil {
		return []hostcheck.Check{{Name: "nvidia gpu", OK: true, Detail: "no NVIDIA driver: GPU support off"}}
	}
	var out []hostcheck.Check
	mod := ""
	if m := moduleVersion.FindSubmatch(raw); m != nil {
		mod = string(m[1])
	}
	out = append(out, hostcheck.Check{Name: "nvidia kernel module", OK: modErr == nil, Fatal: false,
		Detail: map[bool]string{true: "loaded, version " + mod, false: "not loaded"}[modErr == nil],
		Fix:    "modprobe nvidia (or install the NVIDIA driver)"})
	if libErr != nil {
		out = append(out, hostcheck.Check{Name: "libnvidia-ml", OK: false, Detail: "cannot load: " + libErr.Error(),
			Fix: "install the driver's user-space libraries (libnvidia-compute), or set --gpu-driver-root"})
		return out
	}
	match := mod == "" || p.DriverVersion == mod
	out = append(out, hostcheck.Check{Name: "libnvidia-ml", OK: match,
		Detail: map[bool]string{true: "version " + p.DriverVersion, false: fmt.Sprintf("version %s does not match the kernel module %s", p.DriverVersion, mod)}[match],
		Fix:    "reboot after a driver upgrade, or reinstall one driver version"})
	var noPersist, pending []string
	migOn := 0
	for _, g := range p.GPUs {
		if g.Persistence != nil && !*g.Persistence {
			noPersist = append(noPersist, fmt.Sprint(g.Index))
		}
		if g.MIGEnabled != nil && *g.MIGEnabled {
			migOn++
		}
		if g.MIGPending {
			pending = append(pending, fmt.Sprint(g.Index))
		}
	}
	n := len(p.GPUs)
	out = append(out, hostcheck.Check{Name: "gpu persistence mode", OK: len(noPersist) == 0,
		Detail: map[bool]string{true: fmt.Sprintf("on for all %d GPUs", n), false: "off on GPU " + strings.Join(noPersist, ",")}[len(noPersist) == 0],
		Fix:    "systemctl enable --now nvidia-persistenced (or nvidia-smi -pm 1)"})
	out = append(out, hostcheck.Check{Name: "gpu MIG mode", OK: len(pending) == 0,
		Detail: map[bool]string{true: fmt.Sprintf("enabled on %d of %d GPUs", migOn, n), false: "change pending on GPU " + strings.Join(pending, ",")}[len(pending) == 0],
		Fix:    "reset the GPUs (nvidia-smi -r) or reboot to apply the MIG mode change"})
	if sw, _ := filepath.Glob(filepath.Join(root, "/proc/driver/nvidia-nvswitch/devices/*")); len(sw) > 0 {
		fm := processRunning(root, "nv-fabricmanager")
		out = append(out, hostcheck.Check{Name: "nvswitch fabric manager", OK: fm, Fatal: false,
			Detail: map[bool]string{true: fmt.Sprintf("running (%d NVSwitches)", len(sw)), false: fmt.Sprintf("not running, %d NVSwitches present: GPUs cannot run CUDA work", len(sw))}[fm],
			Fix:    "systemctl enable --now nvidia-fabricmanager (same version as the driver)"})
	}
	return out
}

func processRunning(root, name string) bool {
	comms, _ := filepath.Glob(filepath.Join(root, "/proc/[0-9]*/comm"))
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == name {
			return true
		}
	}
	return false
}
