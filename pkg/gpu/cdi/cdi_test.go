package cdi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

func touch(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeRoot lays out a driver install: device nodes (plain files stand in), libraries with
// their .so.1 links, nvidia-smi and the MIG caps table.
func fakeRoot(t *testing.T) string {
	r := t.TempDir()
	for _, d := range []string{"dev/nvidia0", "dev/nvidia1", "dev/nvidiactl", "dev/nvidia-uvm", "dev/nvidia-caps/nvidia-cap12", "dev/nvidia-caps/nvidia-cap13", "usr/bin/nvidia-smi"} {
		touch(t, filepath.Join(r, d))
	}
	lib := filepath.Join(r, "usr/lib/x86_64-linux-gnu")
	for _, l := range []string{"libnvidia-ml.so", "libcuda.so"} {
		touch(t, filepath.Join(lib, l+".550.54.15"))
		os.Symlink(l+".550.54.15", filepath.Join(lib, l+".1"))
	}
	touch(t, filepath.Join(r, "proc/driver/nvidia-caps/mig-minors"))
	os.WriteFile(filepath.Join(r, "proc/driver/nvidia-caps/mig-minors"), []byte("gpu1/gi2/access 12\ngpu1/gi2/ci0/access 13\n"), 0o644)
	return r
}

func TestGenerateFieldByField(t *testing.T) {
	root := fakeRoot(t)
	n := &detect.Node{DriverVersion: "550.54.15", GPUs: []detect.GPU{
		{Index: 0, Minor: 0, UUID: "GPU-aaa"},
		{Index: 1, Minor: 1, UUID: "GPU-bbb", MIGEnabled: true, MIG: []detect.MIGDevice{{ID: "MIG-GPU-bbb/2/0", GPUInstanceID: 2, ComputeInstanceID: 0, Profile: "3g.20gb"}}},
	}}
	s, err := Generate(n, root, root)
	if err != nil {
		t.Fatal(err)
	}
	if s.CDIVersion != "0.6.0" || s.Kind != "nvidia.com/gpu" {
		t.Errorf("header %s %s", s.CDIVersion, s.Kind)
	}
	names := map[string]Device{}
	for _, d := range s.Devices {
		names[d.Name] = d
	}
	for _, want := range []string{"0", "1", "GPU-aaa", "GPU-bbb", "1:2", "all"} {
		if _, ok := names[want]; !ok {
			t.Errorf("no device %q", want)
		}
	}
	if d := names["0"].ContainerEdits.DeviceNodes; len(d) != 1 || d[0].Path != "/dev/nvidia0" || d[0].HostPath != filepath.Join(root, "dev/nvidia0") {
		t.Errorf("device 0 nodes %+v", d)
	}
	if d := names["1:2"].ContainerEdits.DeviceNodes; len(d) != 3 || d[1].Path != "/dev/nvidia-caps/nvidia-cap12" || d[2].Path != "/dev/nvidia-caps/nvidia-cap13" {
		t.Errorf("MIG device nodes %+v", d)
	}
	if d := names["all"].ContainerEdits.DeviceNodes; len(d) != 2 {
		t.Errorf("all: %+v", d)
	}
	var ctl []string
	for _, d := range s.ContainerEdits.DeviceNodes {
		ctl = append(ctl, d.Path)
	}
	if strings.Join(ctl, ",") != "/dev/nvidiactl,/dev/nvidia-uvm" {
		t.Errorf("control nodes %v (only the ones present)", ctl)
	}
	mounts := map[string]Mount{}
	for _, m := range s.ContainerEdits.Mounts {
		mounts[m.ContainerPath] = m
	}
	m, ok := mounts["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
	if !ok || m.HostPath != filepath.Join(root, "usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15") || m.Options[0] != "ro" {
		t.Errorf("libcuda.so.1 mount %+v (link resolved to the versioned file)", m)
	}
	if _, ok := mounts["/usr/bin/nvidia-smi"]; !ok {
		t.Error("nvidia-smi not mounted")
	}
	if len(mounts) != 5 {
		t.Errorf("%d mounts, want 4 libraries + nvidia-smi: %v", len(mounts), mounts)
	}
	p, err := Write(s, filepath.Join(root, "var/run/cdi"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var back Spec
	if err := yaml.Unmarshal(b, &back); err != nil || back.Kind != Kind || len(back.Devices) != len(s.Devices) {
		t.Errorf("written spec does not round-trip: %v", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	root := fakeRoot(t)
	n := &detect.Node{GPUs: []detect.GPU{{Index: 0, Minor: 7}}}
	if _, err := Generate(n, root, root); err == nil || !strings.Contains(err.Error(), "/dev/nvidia7") {
		t.Errorf("missing device node: %v", err)
	}
	empty := t.TempDir()
	touch(t, filepath.Join(empty, "dev/nvidia0"))
	n = &detect.Node{GPUs: []detect.GPU{{Index: 0, Minor: 0}}}
	if _, err := Generate(n, empty, empty); err == nil || !strings.Contains(err.Error(), "--nvidia-driver-root") {
		t.Errorf("missing libnvidia-ml: %v", err)
	}
}
