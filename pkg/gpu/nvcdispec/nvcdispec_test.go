package nvcdispec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/outpostk8s/outpost/pkg/gpu/fakedriver"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

const version = "550.54.15" // go-nvml's DGX A100 driver

// host lays out a driver install and /dev for eight GPUs under a temp dir.
func host(t *testing.T) gpulib.CDIOptions {
	t.Helper()
	root := t.TempDir()
	driver, dev := filepath.Join(root, "driver"), filepath.Join(root, "dev")
	sock, err := fakedriver.Make(driver, version)
	if err != nil {
		t.Skipf("no fake driver here: %v", err)
	}
	t.Cleanup(func() { sock.Close() })
	os.MkdirAll(filepath.Join(dev, "dev"), 0o755)
	for _, n := range []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidia4", "nvidia5", "nvidia6", "nvidia7"} {
		// Clones of /dev/null stand in for the driver's character devices: NVIDIA's generator
		// takes nothing else (not even a link to one) for a device node.
		if err := syscall.Mknod(filepath.Join(dev, "dev", n), syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
			t.Skipf("device nodes need mknod (root): %v", err)
		}
	}
	return gpulib.CDIOptions{DriverRoot: driver, DevRoot: dev, HookPath: "/opt/outpost/bin/outpost-gpu", NoSandboxUtils: true}
}

func parse(t *testing.T, s *gpulib.CDISpec) *specs.Spec {
	t.Helper()
	if err := Validate(s.YAML); err != nil {
		t.Fatal(err)
	}
	raw, err := cdiapi.ParseSpec(s.YAML)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// dgxA100 is go-nvml's DGX A100 model with MIG off, answering the MIG device calls it leaves
// out as the driver does: seven slots, none in use.
func dgxA100() nvml.Interface {
	srv := dgxa100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
		dev.GetMigDeviceHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
	}
	return srv
}

// containerPaths are every path the spec puts in a container, device or common.
func containerPaths(s *specs.Spec) map[string]bool {
	out := map[string]bool{}
	add := func(e specs.ContainerEdits) {
		for _, m := range e.Mounts {
			out[m.ContainerPath] = true
		}
		for _, d := range e.DeviceNodes {
			out[d.Path] = true
		}
	}
	add(s.ContainerEdits)
	for _, d := range s.Devices {
		add(d.ContainerEdits)
	}
	return out
}

// On go-nvml's DGX A100 and a driver install with video and graphics files, the spec holds
// every class, the hooks run the helper, and the devices carry Outpost's names.
func TestSpecHasEveryFileClass(t *testing.T) {
	o := host(t)
	got, err := Generate(dgxA100(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := parse(t, got)
	paths := containerPaths(s)
	for class, libs := range fakedriver.Libraries() {
		for _, l := range libs {
			if p := fakedriver.LibDir + "/" + l + "." + version; !paths[p] {
				t.Errorf("%s library %s is not in the spec", class, p)
			}
		}
	}
	for class, files := range fakedriver.Files(version) {
		for _, f := range files {
			if !paths[f] && !paths[strings.Replace(f, "/var/run", "/run", 1)] {
				t.Errorf("%s file %s is not in the spec", class, f)
			}
		}
	}
	hooks := map[string]bool{}
	for _, h := range s.ContainerEdits.Hooks {
		if h.Path != o.HookPath || len(h.Args) < 2 || h.Args[0] != filepath.Base(o.HookPath) {
			t.Errorf("hook %s %v does not run the helper", h.Path, h.Args)
			continue
		}
		hooks[h.Args[1]] = true
	}
	for _, want := range []string{"update-ldcache", "create-symlinks"} {
		if !hooks[want] {
			t.Errorf("no %s hook: %v", want, hooks)
		}
	}
	names := map[string]bool{}
	for _, d := range s.Devices {
		names[d.Name] = true
	}
	for _, want := range []string{"0", "7", "all"} {
		if !names[want] {
			t.Errorf("no device %q in %v", want, names)
		}
	}
	for _, d := range s.Devices {
		if d.Name == "3" && (len(d.ContainerEdits.DeviceNodes) == 0 || d.ContainerEdits.DeviceNodes[0].Path != "/dev/nvidia3") {
			t.Errorf("GPU 3's device nodes: %+v", d.ContainerEdits.DeviceNodes)
		}
	}
	for _, e := range s.ContainerEdits.Env {
		if e == "NVIDIA_VISIBLE_DEVICES=void" {
			t.Errorf("the spec overwrites the device plugin's NVIDIA_VISIBLE_DEVICES")
		}
	}
	if testing.Verbose() {
		t.Logf("%s", got.YAML)
		t.Logf("%s", strings.Join(got.Warnings, "\n"))
	}
	t.Logf("%d devices, %d mounts, %d hooks, %d warnings", len(s.Devices), len(s.ContainerEdits.Mounts), len(s.ContainerEdits.Hooks), len(got.Warnings))
}

// The mock machine's MIG devices are named "<GPU>:<GPU instance>", as the device plugin names
// them, and the GPUs by index and UUID.
func TestMockNamesMIGDevicesLikeThePlugin(t *testing.T) {
	o := host(t)
	m := mockgpu.DGXA100()
	before, _ := m.Detect()
	plan, err := mig.Resolve("all-1g.5gb", nil, before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyMIG(plan[7]); err != nil {
		t.Fatal(err)
	}
	got, err := Mock{Lib: m}.CDISpec(o)
	if err != nil {
		t.Fatal(err)
	}
	// Every GPU in MIG mode: no whole GPU is left for the generator's "all", which still has
	// every device node.
	for _, p := range plan[:7] {
		if _, err := m.ApplyMIG(p); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := (Mock{Lib: m}).CDISpec(o); err != nil || !strings.Contains(string(s.YAML), "name: all") {
		t.Errorf("all GPUs in MIG mode: %v", err)
	}
	s := parse(t, got)
	n, _ := m.Detect()
	names := map[string]bool{}
	for _, d := range s.Devices {
		names[d.Name] = true
	}
	want := []string{"0", mockgpu.UUID(0), "all"}
	for _, d := range n.GPUs[7].MIG {
		want = append(want, fmt.Sprintf("7:%d", d.GPUInstanceID))
	}
	for _, w := range want {
		if !names[w] {
			t.Errorf("no device %q in %v", w, names)
		}
	}
}

type uuid string

func (u uuid) GetUUID() (string, error) { return string(u), nil }

// A real driver's MIG devices are named by their GPU instance, found by their UUID.
func TestNamerNamesMIGDevicesByGPUInstance(t *testing.T) {
	n := outpostNamer{mig: map[string]string{"MIG-a": "3:9"}}
	if got, err := n.GetMigDeviceName(3, uuid("GPU-x"), 0, uuid("MIG-a")); err != nil || got != "3:9" {
		t.Errorf("MIG-a named %q %v, want 3:9", got, err)
	}
	if got, err := n.GetMigDeviceName(3, uuid("GPU-x"), 1, uuid("MIG-new")); err != nil || got != "" {
		t.Errorf("a MIG device that appeared mid-generation: %q %v, want no Outpost name (its UUID only)", got, err)
	}
	if got, _ := n.GetDeviceName(5, uuid("GPU-y")); got != "5" {
		t.Errorf("GPU 5 named %q", got)
	}
}

// Every GPU in MIG mode and no MIG device (MIG instances do not survive a reboot): an empty
// spec, not an error that would stop the node before a layout can make devices.
func TestNoDeviceIsAnEmptySpec(t *testing.T) {
	o := host(t)
	m := mockgpu.DGXA100()
	for i := 0; i < 8; i++ {
		if _, err := m.ApplyMIG(mig.GPUPlan{Index: i, UUID: mockgpu.UUID(i), Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Mock{Lib: m}.CDISpec(o)
	if err != nil || len(got.YAML) != 0 {
		t.Fatalf("no device: %q %v, want an empty spec", got.YAML, err)
	}
}

// Two compute instances in one GPU instance: the first keeps "<GPU>:<GI>", the second only its
// UUID (with a warning), so the spec stays valid.
func TestMIGNamesOneComputeInstancePerGPUInstance(t *testing.T) {
	mk := func(uuid string, gi int) nvml.Device {
		return &mock.Device{GetUUIDFunc: func() (string, nvml.Return) { return uuid, nvml.SUCCESS },
			GetGpuInstanceIdFunc: func() (int, nvml.Return) { return gi, nvml.SUCCESS }}
	}
	migs := []nvml.Device{mk("MIG-a", 1), mk("MIG-b", 1), mk("MIG-c", 2)}
	gpu := &mock.Device{
		GetMigModeFunc:           func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS },
		GetMaxMigDeviceCountFunc: func() (int, nvml.Return) { return 7, nvml.SUCCESS },
		GetMigDeviceHandleByIndexFunc: func(j int) (nvml.Device, nvml.Return) {
			if j < len(migs) {
				return migs[j], nvml.SUCCESS
			}
			return nil, nvml.ERROR_NOT_FOUND
		},
	}
	lib := &mock.Interface{DeviceGetCountFunc: func() (int, nvml.Return) { return 1, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) { return gpu, nvml.SUCCESS }}
	log := &collect{}
	names, err := migNames(lib, log)
	if err != nil {
		t.Fatal(err)
	}
	if names["MIG-a"] != "0:1" || names["MIG-c"] != "0:2" || names["MIG-b"] != "" || len(log.warnings()) != 1 {
		t.Errorf("names %v, warnings %v", names, log.warnings())
	}
}
