package nvmllib

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// apply resolves the layout against what Detect sees and applies it to every GPU, as the
// agent does (including the second pass for GPUs that list profiles only with MIG on).
func apply(t *testing.T, l *Lib, layout string) []mig.Result {
	t.Helper()
	var results []mig.Result
	for pass := 0; pass < 2; pass++ {
		n, err := l.Detect()
		if err != nil {
			t.Fatal(err)
		}
		plan, err := mig.Resolve(layout, nil, n)
		if err != nil {
			t.Fatal(err)
		}
		again := false
		results = nil
		for _, p := range plan {
			r, err := l.ApplyMIG(p)
			if err != nil {
				t.Fatalf("%s on GPU %d: %v", layout, p.Index, err)
			}
			results = append(results, r)
			again = again || p.Unresolved
		}
		if !again {
			break
		}
	}
	return results
}

func layoutOf(g detect.GPU) string {
	var p []string
	for _, m := range g.MIG {
		p = append(p, m.Profile)
	}
	sort.Strings(p)
	return strings.Join(p, ",")
}

// ids are a GPU's MIG device IDs in order (the mock lists them in map order).
func ids(g detect.GPU) string {
	var s []string
	for _, m := range g.MIG {
		s = append(s, m.ID)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func detectAll(t *testing.T, l *Lib) *detect.Node {
	t.Helper()
	n, err := l.Detect()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// From MIG off to all-1g.5gb, to all-balanced, back to all-disabled, on go-nvml's DGX A100.
func TestApplyMIGLayouts(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	l := New(srv)
	n := detectAll(t, l)
	if len(n.GPUs[0].MIGProfiles) != 7 || n.GPUs[0].MIGProfiles[0].Name != "1g.5gb" || len(n.GPUs[0].MIGProfiles[0].Placements) != 7 {
		t.Fatalf("profiles %+v", n.GPUs[0].MIGProfiles)
	}
	apply(t, l, "all-1g.5gb")
	n = detectAll(t, l)
	for _, g := range n.GPUs {
		if !g.MIGEnabled || layoutOf(g) != "1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb" {
			t.Fatalf("all-1g.5gb: GPU %d: %v %s", g.Index, g.MIGEnabled, layoutOf(g))
		}
	}
	before := ids(n.GPUs[2])
	apply(t, l, "all-1g.5gb") // nothing to do: the instances (and pods' device IDs) stay
	if n = detectAll(t, l); ids(n.GPUs[2]) != before {
		t.Fatalf("the same layout again recreated the instances: %s then %s", before, ids(n.GPUs[2]))
	}
	apply(t, l, "all-balanced")
	n = detectAll(t, l)
	if layoutOf(n.GPUs[5]) != "1g.5gb,1g.5gb,2g.10gb,3g.20gb" {
		t.Fatalf("all-balanced: %s", layoutOf(n.GPUs[5]))
	}
	apply(t, l, "all-disabled")
	n = detectAll(t, l)
	for _, g := range n.GPUs {
		if g.MIGEnabled || len(g.MIG) != 0 {
			t.Fatalf("all-disabled: GPU %d: %v %s", g.Index, g.MIGEnabled, layoutOf(g))
		}
	}
}

// A driver that lists profiles only with MIG on: the layout is applied in two passes.
func TestApplyMIGProfilesOnlyWithMIGOn(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		inner := dev.GetGpuInstanceProfileInfoFunc
		dev.GetGpuInstanceProfileInfoFunc = func(id int) (nvml.GpuInstanceProfileInfo, nvml.Return) {
			if mode, _, _ := dev.GetMigMode(); mode != nvml.DEVICE_MIG_ENABLE {
				return nvml.GpuInstanceProfileInfo{}, nvml.ERROR_NOT_SUPPORTED
			}
			return inner(id)
		}
	}
	l := New(srv)
	if n := detectAll(t, l); len(n.GPUs[0].MIGProfiles) != 0 {
		t.Fatal("profiles listed with MIG off")
	}
	apply(t, l, "all-3g.20gb")
	if n := detectAll(t, l); layoutOf(n.GPUs[7]) != "3g.20gb,3g.20gb" {
		t.Fatalf("all-3g.20gb: %s", layoutOf(n.GPUs[7]))
	}
}

// A mode change the driver defers to a reset is reported and nothing else is done.
func TestApplyMIGResetNeeded(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	dev := srv.Devices[0].(*server.Device)
	pending := nvml.DEVICE_MIG_DISABLE
	dev.SetMigModeFunc = func(mode int) (nvml.Return, nvml.Return) { pending = mode; return nvml.SUCCESS, nvml.ERROR_IN_USE }
	dev.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_DISABLE, pending, nvml.SUCCESS }
	l := New(srv)
	res := apply(t, l, "all-1g.5gb")
	if !res[0].ResetNeeded || res[1].ResetNeeded {
		t.Fatalf("results %+v", res)
	}
	n := detectAll(t, l)
	if !n.GPUs[0].MIGPending || len(dev.GpuInstances) != 0 {
		t.Fatalf("GPU 0 pending %v, %d instances", n.GPUs[0].MIGPending, len(dev.GpuInstances))
	}
}

// When the driver refuses an instance partway, the GPU is emptied, not left half made.
func TestApplyMIGCreateFails(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	dev := srv.Devices[1].(*server.Device)
	inner := dev.CreateGpuInstanceWithPlacementFunc
	made := 0
	dev.CreateGpuInstanceWithPlacementFunc = func(info *nvml.GpuInstanceProfileInfo, pl *nvml.GpuInstancePlacement) (nvml.GpuInstance, nvml.Return) {
		if made++; made == 3 {
			return nil, nvml.ERROR_INSUFFICIENT_RESOURCES
		}
		return inner(info, pl)
	}
	l := New(srv)
	n := detectAll(t, l)
	plan, err := mig.Resolve("all-1g.5gb", nil, n)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.ApplyMIG(plan[1])
	if err == nil || !strings.Contains(strings.ToUpper(err.Error()), "INSUFFICIENT") || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("err %v", err)
	}
	if len(dev.GpuInstances) != 0 {
		t.Fatalf("%d GPU instances left", len(dev.GpuInstances))
	}
}

// A GPU in MIG mode reads each MIG device's memory through its handle, named as the device
// plugin names it.
func TestMIGReadings(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	l := New(srv)
	apply(t, l, "all-3g.20gb")
	dev := srv.Devices[4].(*server.Device)
	var handles []nvml.Device
	for gi := range dev.GpuInstances {
		id := int(gi.Info.Id)
		handles = append(handles, &mock.Device{
			GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return id, nvml.SUCCESS },
			GetComputeInstanceIdFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS },
			GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
				return nvml.Memory{Total: 19968 << 20, Used: uint64(id+1) << 30, Free: (19968 << 20) - uint64(id+1)<<30}, nvml.SUCCESS
			},
		})
	}
	dev.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	dev.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i >= len(handles) {
			return nil, nvml.ERROR_NOT_FOUND
		}
		return handles[i], nvml.SUCCESS
	}
	for _, d := range srv.Devices {
		d := d.(*server.Device)
		if d != dev {
			d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
		}
		noMore(d)
	}
	rs, err := l.Readings()
	if err != nil {
		t.Fatal(err)
	}
	m := rs[4].MIG
	if len(m) != 2 || m[0].Profile != "3g.20gb" || *m[0].FBTotalMiB != 19968 || *m[0].FBUsedMiB != float64((m[0].GPUInstanceID+1)*1024) {
		t.Fatalf("GPU 4 MIG readings %+v", m)
	}
	if want := fmt.Sprintf("MIG-%s/%d/0", rs[4].UUID, m[1].GPUInstanceID); m[1].ID != want {
		t.Fatalf("MIG id %s, want %s", m[1].ID, want)
	}
	if len(rs[3].MIG) != 0 {
		t.Fatalf("GPU 3 has no MIG handles: %+v", rs[3].MIG)
	}
}
