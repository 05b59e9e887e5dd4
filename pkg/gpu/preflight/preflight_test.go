package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

func write(t *testing.T, p, body string) {
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func byName(cs []hostcheck.Check) map[string]hostcheck.Check {
	m := map[string]hostcheck.Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func dgx(persist nvml.EnableState) *mockserver.Server {
	s := dgxa100.New()
	for _, d := range s.Devices {
		d.(*mockserver.Device).GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return persist, nvml.SUCCESS }
	}
	return s
}

func TestDGXHealthyAndBroken(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
	write(t, filepath.Join(root, "proc/driver/nvidia-nvswitch/devices/0000:07:00.0"), "")
	write(t, filepath.Join(root, "proc/1234/comm"), "nv-fabricmanager\n")
	c := byName(Checks(root, dgx(nvml.FEATURE_ENABLED)))
	for _, name := range []string{"nvidia kernel module", "libnvidia-ml", "gpu persistence mode", "gpu MIG mode", "nvswitch fabric manager"} {
		if !c[name].OK {
			t.Errorf("%s: %+v", name, c[name])
		}
	}
	if !strings.Contains(c["libnvidia-ml"].Detail, "550.54.15") {
		t.Errorf("lib detail %q", c["libnvidia-ml"].Detail)
	}

	// Persistence off, fabric manager gone, library from another driver version.
	os.Remove(filepath.Join(root, "proc/1234/comm"))
	write(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05\n")
	c = byName(Checks(root, dgx(nvml.FEATURE_DISABLED)))
	for name, want := range map[string]string{
		"libnvidia-ml":            "does not match the kernel module 535.104.05",
		"gpu persistence mode":    "off on GPU 0,1,2,3,4,5,6,7",
		"nvswitch fabric manager": "not running",
	} {
		if c[name].OK || !strings.Contains(c[name].Detail, want) || c[name].Fix == "" {
			t.Errorf("%s: %+v, want failing with %q and a fix", name, c[name], want)
		}
	}
}

func TestNoDriver(t *testing.T) {
	s := dgxa100.New()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	cs := Checks(t.TempDir(), s)
	if len(cs) != 1 || !cs[0].OK || !strings.Contains(cs[0].Detail, "no NVIDIA driver") {
		t.Errorf("%+v", cs)
	}
	// Module loaded but no library: named, with the fix.
	root := t.TempDir()
	write(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n")
	c := byName(Checks(root, s))
	if c["libnvidia-ml"].OK || !strings.Contains(c["libnvidia-ml"].Fix, "--gpu-driver-root") {
		t.Errorf("%+v", c["libnvidia-ml"])
	}
}
