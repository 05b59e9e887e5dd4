package nvmllib

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// migProfiles lists the GPU instance profiles dev offers, with their placements. Some drivers
// list none while MIG is off: the caller then resolves a layout after turning MIG on.
func migProfiles(dev nvml.Device, gpuMiB uint64) []detect.MIGProfile {
	var out []detect.MIGProfile
	for id := 0; id < nvml.GPU_INSTANCE_PROFILE_COUNT; id++ {
		info, r := dev.GetGpuInstanceProfileInfo(id)
		if !ok(r) || info.InstanceCount == 0 {
			continue
		}
		p := detect.MIGProfile{ID: id, Name: mig.ProfileName(id, int(info.SliceCount), info.MemorySizeMB, gpuMiB, 0),
			Slices: int(info.SliceCount), Max: int(info.InstanceCount), MemoryMiB: info.MemorySizeMB}
		if pls, r := dev.GetGpuInstancePossiblePlacements(&info); ok(r) {
			for _, pl := range pls {
				p.Placements = append(p.Placements, detect.Placement{Start: int(pl.Start), Size: int(pl.Size)})
			}
		}
		out = append(out, p)
	}
	return out
}

// ciProfile is the compute instance profile that fills a GPU instance of that many slices.
func ciProfile(slices uint32) (int, bool) {
	id, ok := map[uint32]int{1: nvml.COMPUTE_INSTANCE_PROFILE_1_SLICE, 2: nvml.COMPUTE_INSTANCE_PROFILE_2_SLICE,
		3: nvml.COMPUTE_INSTANCE_PROFILE_3_SLICE, 4: nvml.COMPUTE_INSTANCE_PROFILE_4_SLICE, 6: nvml.COMPUTE_INSTANCE_PROFILE_6_SLICE,
		7: nvml.COMPUTE_INSTANCE_PROFILE_7_SLICE, 8: nvml.COMPUTE_INSTANCE_PROFILE_8_SLICE}[slices]
	return id, ok
}

// ApplyMIG makes one GPU what p says: MIG mode first, then (when its instances differ) every
// compute and GPU instance destroyed and p's created at their placements. A mode change the
// driver defers to a reset is reported, not waited for. When creating fails, the GPU is
// emptied again rather than left half made.
func (l *Lib) ApplyMIG(p mig.GPUPlan) (mig.Result, error) {
	if r := l.nvml.Init(); !ok(r) {
		return mig.Result{}, fail("init", r)
	}
	defer l.nvml.Shutdown()
	dev, r := l.nvml.DeviceGetHandleByUUID(p.UUID)
	if !ok(r) {
		return mig.Result{}, fail("GPU "+p.UUID, r)
	}
	cur, _, r := dev.GetMigMode()
	if !ok(r) {
		return mig.Result{}, fail(fmt.Sprintf("GPU %d MIG mode", p.Index), r)
	}
	if !p.Enabled {
		if cur != nvml.DEVICE_MIG_ENABLE {
			return mig.Result{}, nil
		}
		if err := destroyAll(dev); err != nil {
			return mig.Result{}, fmt.Errorf("GPU %d: %w", p.Index, err)
		}
		return setMode(dev, p.Index, nvml.DEVICE_MIG_DISABLE)
	}
	if cur != nvml.DEVICE_MIG_ENABLE {
		if res, err := setMode(dev, p.Index, nvml.DEVICE_MIG_ENABLE); err != nil || res.ResetNeeded {
			return res, err
		}
	}
	if p.Unresolved {
		return mig.Result{}, nil // MIG on; the caller resolves the layout now that profiles show
	}
	mem, r := dev.GetMemoryInfo()
	if !ok(r) {
		return mig.Result{}, fail(fmt.Sprintf("GPU %d memory", p.Index), r)
	}
	have, err := migDevices(dev, "", mem.Total>>20)
	if err != nil {
		return mig.Result{}, fmt.Errorf("GPU %d: %w", p.Index, err)
	}
	if !mig.Differs(detect.GPU{MIGEnabled: true, MIG: have}, p) {
		return mig.Result{}, nil
	}
	if err := destroyAll(dev); err != nil {
		return mig.Result{}, fmt.Errorf("GPU %d: %w", p.Index, err)
	}
	for _, in := range p.Instances {
		if err := create(dev, in); err != nil {
			_ = destroyAll(dev)
			return mig.Result{}, fmt.Errorf("GPU %d: MIG %s at slice %d: %w (its MIG instances were removed)", p.Index, in.Profile, in.Placement.Start, err)
		}
	}
	return mig.Result{}, nil
}

// setMode changes MIG mode; a change still pending afterwards needs a GPU reset.
func setMode(dev nvml.Device, index, mode int) (mig.Result, error) {
	if r, _ := dev.SetMigMode(mode); !ok(r) {
		if r == nvml.ERROR_IN_USE {
			return mig.Result{}, fmt.Errorf("GPU %d: MIG mode: a process uses the GPU (%s): stop it, then set the layout again", index, nvml.ErrorString(r))
		}
		return mig.Result{}, fail(fmt.Sprintf("GPU %d set MIG mode", index), r)
	}
	cur, _, r := dev.GetMigMode()
	if !ok(r) {
		return mig.Result{}, fail(fmt.Sprintf("GPU %d MIG mode", index), r)
	}
	return mig.Result{ResetNeeded: cur != mode}, nil
}

// create makes one GPU instance at its placement and one compute instance filling it.
func create(dev nvml.Device, in mig.Instance) error {
	info, r := dev.GetGpuInstanceProfileInfo(in.ProfileID)
	if !ok(r) {
		return fail("profile info", r)
	}
	pl := nvml.GpuInstancePlacement{Start: uint32(in.Placement.Start), Size: uint32(in.Placement.Size)}
	gi, r := dev.CreateGpuInstanceWithPlacement(&info, &pl)
	if !ok(r) {
		return fail("create GPU instance", r)
	}
	id, known := ciProfile(info.SliceCount)
	if !known {
		return fmt.Errorf("no compute instance profile for %d slices", info.SliceCount)
	}
	ci, r := gi.GetComputeInstanceProfileInfo(id, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
	if !ok(r) {
		return fail("compute instance profile", r)
	}
	if _, r := gi.CreateComputeInstance(&ci); !ok(r) {
		return fail("create compute instance", r)
	}
	return nil
}

// destroyAll removes every compute instance, then every GPU instance.
func destroyAll(dev nvml.Device) error {
	for id := 0; id < nvml.GPU_INSTANCE_PROFILE_COUNT; id++ {
		info, r := dev.GetGpuInstanceProfileInfo(id)
		if !ok(r) {
			continue
		}
		gis, r := dev.GetGpuInstances(&info)
		if !ok(r) {
			continue
		}
		for _, gi := range gis {
			for cp := 0; cp < nvml.COMPUTE_INSTANCE_PROFILE_COUNT; cp++ {
				ciInfo, r := gi.GetComputeInstanceProfileInfo(cp, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
				if !ok(r) {
					continue
				}
				cis, _ := gi.GetComputeInstances(&ciInfo)
				for _, ci := range cis {
					if r := ci.Destroy(); !ok(r) {
						return fail("destroy compute instance", r)
					}
				}
			}
			if r := gi.Destroy(); !ok(r) {
				return fail("destroy GPU instance", r)
			}
		}
	}
	return nil
}
