package preflight

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
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

// dgx is the mock with persistence mode set on every GPU.
type dgx struct {
	*mockgpu.Machine
	persist bool
}

func (d dgx) Preflight() (*gpulib.Preflight, error) {
	p, err := d.Machine.Preflight()
	for i := range p.GPUs {
		p.GPUs[i].Persistence = gpulib.Bool(d.persist)
	}
	return p, err
}

// broken is a library that does not load.
type broken struct{ *mockgpu.Machine }

func (broken) Preflight() (*gpulib.Preflight, error) {
	return nil, errors.New("nvml init: ERROR_LIBRARY_NOT_FOUND")
}

func TestDGXHealthyAndBroken(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
	write(t, filepath.Join(root, "proc/driver/nvidia-nvswitch/devices/0000:07:00.0"), "")
	write(t, filepath.Join(root, "proc/1234/comm"), "nv-fabricmanager\n")
	c := byName(Checks(root, dgx{mockgpu.DGXA100(), true}))
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
	c = byName(Checks(root, dgx{mockgpu.DGXA100(), false}))
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
	for _, lib := range []gpulib.Lib{nil, broken{mockgpu.DGXA100()}} {
		cs := Checks(t.TempDir(), lib)
		if len(cs) != 1 || !cs[0].OK || !strings.Contains(cs[0].Detail, "no NVIDIA driver") {
			t.Errorf("%+v", cs)
		}
	}
	// Module loaded but no library: named, with the fix.
	root := t.TempDir()
	write(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n")
	for _, lib := range []gpulib.Lib{nil, broken{mockgpu.DGXA100()}} {
		c := byName(Checks(root, lib))
		if c["libnvidia-ml"].OK || !strings.Contains(c["libnvidia-ml"].Fix, "--gpu-driver-root") {
			t.Errorf("%+v", c["libnvidia-ml"])
		}
	}
}
