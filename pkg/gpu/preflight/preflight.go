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

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

var moduleVersion = regexp.MustCompile(`Kernel Module\s+(?:for \S+\s+)?([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)

// Checks returns one line per GPU check; none when the host shows no sign of an NVIDIA GPU.
func Checks(root string, lib nvml.Interface) []hostcheck.Check {
	raw, modErr := os.ReadFile(filepath.Join(root, "/proc/driver/nvidia/version"))
	r := lib.Init()
	if modErr != nil && r != nvml.SUCCESS {
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
	if r != nvml.SUCCESS {
		out = append(out, hostcheck.Check{Name: "libnvidia-ml", OK: false, Detail: "cannot load: " + nvml.ErrorString(r),
			Fix: "install the driver's user-space libraries (libnvidia-compute), or set --gpu-driver-root"})
		return out
	}
	defer lib.Shutdown()
	lv, _ := lib.SystemGetDriverVersion()
	match := mod == "" || lv == mod
	out = append(out, hostcheck.Check{Name: "libnvidia-ml", OK: match,
		Detail: map[bool]string{true: "version " + lv, false: fmt.Sprintf("version %s does not match the kernel module %s", lv, mod)}[match],
		Fix:    "reboot after a driver upgrade, or reinstall one driver version"})
	n, _ := lib.DeviceGetCount()
	var noPersist, pending []string
	migOn := 0
	for i := 0; i < n; i++ {
		d, r := lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue
		}
		if p, r := d.GetPersistenceMode(); r == nvml.SUCCESS && p != nvml.FEATURE_ENABLED {
			noPersist = append(noPersist, fmt.Sprint(i))
		}
		if cur, pend, r := d.GetMigMode(); r == nvml.SUCCESS {
			if cur == nvml.DEVICE_MIG_ENABLE {
				migOn++
			}
			if cur != pend {
				pending = append(pending, fmt.Sprint(i))
			}
		}
	}
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
