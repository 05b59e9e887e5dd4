package nvmllib

import (
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

func ok(r nvml.Return) bool { return r == nvml.SUCCESS }

func fail(what string, r nvml.Return) error {
	return fmt.Errorf("nvml %s: %s", what, nvml.ErrorString(r))
}

// Detect initializes NVML, reads everything, and shuts it down.
func Detect(lib nvml.Interface) (*detect.Node, error) {
	if r := lib.Init(); !ok(r) {
		if r == nvml.ERROR_LIBRARY_NOT_FOUND || r == nvml.ERROR_DRIVER_NOT_LOADED || r == nvml.ERROR_NO_PERMISSION {
			return nil, fmt.Errorf("%w: %s", detect.ErrNoDriver, nvml.ErrorString(r))
		}
		return nil, fail("init", r)
	}
	defer lib.Shutdown()
	n := &detect.Node{}
	var r nvml.Return
	if n.DriverVersion, r = lib.SystemGetDriverVersion(); !ok(r) {
		return nil, fail("driver version", r)
	}
	cuda, r := lib.SystemGetCudaDriverVersion()
	if !ok(r) {
		return nil, fail("CUDA version", r)
	}
	n.CUDADriverMajor, n.CUDADriverMinor = cuda/1000, (cuda%1000)/10
	count, r := lib.DeviceGetCount()
	if !ok(r) {
		return nil, fail("device count", r)
	}
	for i := 0; i < count; i++ {
		dev, r := lib.DeviceGetHandleByIndex(i)
		if !ok(r) {
			return nil, fail(fmt.Sprintf("device %d", i), r)
		}
		g, err := readGPU(dev, i)
		if err != nil {
			return nil, err
		}
		n.GPUs = append(n.GPUs, g)
	}
	return n, nil
}

func readGPU(dev nvml.Device, i int) (detect.GPU, error) {
	g := detect.GPU{Index: i}
	var r nvml.Return
	if g.UUID, r = dev.GetUUID(); !ok(r) {
		return g, fail(fmt.Sprintf("device %d uuid", i), r)
	}
	if g.Product, r = dev.GetName(); !ok(r) {
		return g, fail(fmt.Sprintf("device %d name", i), r)
	}
	if g.Minor, r = dev.GetMinorNumber(); !ok(r) {
		return g, fail(fmt.Sprintf("device %d minor", i), r)
	}
	mem, r := dev.GetMemoryInfo()
	if !ok(r) {
		return g, fail(fmt.Sprintf("device %d memory", i), r)
	}
	g.MemoryMiB = mem.Total / (1 << 20)
	if major, minor, r := dev.GetCudaComputeCapability(); ok(r) {
		g.ComputeMajor, g.ComputeMinor = major, minor
	}
	if pci, r := dev.GetPciInfo(); ok(r) {
		g.PCIBusID = busID(pci)
	}
	cur, pend, r := dev.GetMigMode()
	switch {
	case ok(r):
		g.MIGCapable, g.MIGEnabled, g.MIGPending = true, cur == nvml.DEVICE_MIG_ENABLE, cur != pend
		g.MIGProfiles = migProfiles(dev, g.MemoryMiB)
	case r == nvml.ERROR_NOT_SUPPORTED:
	default:
		return g, fail(fmt.Sprintf("device %d MIG mode", i), r)
	}
	if g.MIGEnabled {
		devs, err := migDevices(dev, g.UUID, g.MemoryMiB)
		if err != nil {
			return g, fmt.Errorf("device %d: %w", i, err)
		}
		g.MIG = devs
	}
	g.NVLinkPeers = nvlinkPeers(dev)
	return g, nil
}

func busID(p nvml.PciInfo) string {
	var b strings.Builder
	for _, c := range p.BusId {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return strings.ToLower(b.String())
}

// migDevices walks GPU instances of every profile, then their compute instances.
func migDevices(dev nvml.Device, uuid string, gpuMiB uint64) ([]detect.MIGDevice, error) {
	var out []detect.MIGDevice
	for p := 0; p < nvml.GPU_INSTANCE_PROFILE_COUNT; p++ {
		info, r := dev.GetGpuInstanceProfileInfo(p)
		if !ok(r) {
			continue // profile not supported on this GPU
		}
		gis, r := dev.GetGpuInstances(&info)
		if !ok(r) {
			return nil, fail("GPU instances", r)
		}
		for _, gi := range gis {
			giInfo, r := gi.GetInfo()
			if !ok(r) {
				return nil, fail("GPU instance info", r)
			}
			for cp := 0; cp < nvml.COMPUTE_INSTANCE_PROFILE_COUNT; cp++ {
				ciProf, r := gi.GetComputeInstanceProfileInfo(cp, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
				if !ok(r) {
					continue
				}
				cis, r := gi.GetComputeInstances(&ciProf)
				if !ok(r) {
					continue
				}
				for _, ci := range cis {
					ciInfo, r := ci.GetInfo()
					if !ok(r) {
						return nil, fail("compute instance info", r)
					}
					out = append(out, detect.MIGDevice{
						ID:            fmt.Sprintf("MIG-%s/%d/%d", uuid, giInfo.Id, ciInfo.Id),
						Profile:       mig.ProfileName(int(info.Id), int(info.SliceCount), info.MemorySizeMB, gpuMiB, int(ciProf.SliceCount)),
						GPUInstanceID: int(giInfo.Id), ComputeInstanceID: int(ciInfo.Id),
						MemoryMiB: info.MemorySizeMB,
					})
				}
			}
		}
	}
	return out, nil
}

// nvlinkPeers lists the PCI bus IDs at the far end of every active NVLink. GPUs without
// NVLink answer NOT_SUPPORTED on the first link.
func nvlinkPeers(dev nvml.Device) []string {
	seen := map[string]bool{}
	var peers []string
	for l := 0; l < nvml.NVLINK_MAX_LINKS; l++ {
		st, r := dev.GetNvLinkState(l)
		if !ok(r) {
			if r == nvml.ERROR_NOT_SUPPORTED || r == nvml.ERROR_INVALID_ARGUMENT {
				break
			}
			continue
		}
		if st != nvml.FEATURE_ENABLED {
			continue
		}
		pci, r := dev.GetNvLinkRemotePciInfo(l)
		if !ok(r) {
			continue
		}
		if id := busID(pci); id != "" && !seen[id] {
			seen[id] = true
			peers = append(peers, id)
		}
	}
	return peers
}
