// Package gputest builds NVML mock machines for the GPU packages' tests: go-nvml's DGX A100
// model plus what it leaves out (PCI bus IDs, NVLink topology, MIG partitions).
package gputest

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// BusID is the PCI address the mock gives GPU i: the in-process mock's, so tests compare alike.
func BusID(i int) string { return mockgpu.BusID(i) }

// PCI encodes a bus ID as NVML does.
func PCI(id string) nvml.PciInfo {
	var p nvml.PciInfo
	for i := 0; i < len(id) && i < len(p.BusId)-1; i++ {
		p.BusId[i] = int8(id[i])
	}
	return p
}

// FullMesh sets PCI addresses and links every GPU to every other, as NVSwitch does on a DGX.
func FullMesh(srv *mockserver.Server) {
	for i, d := range srv.Devices {
		dev := d.(*mockserver.Device)
		i := i
		var links []int
		for j := range srv.Devices {
			if j != i {
				links = append(links, j)
			}
		}
		base := dev.GetPciInfoFunc
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			p, r := base()
			p.BusId = PCI(BusID(i)).BusId
			return p, r
		}
		dev.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
			if l >= 12 {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			if l < len(links) {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		dev.GetNvLinkRemotePciInfoFunc = func(l int) (nvml.PciInfo, nvml.Return) {
			if l >= len(links) {
				return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
			}
			return PCI(BusID(links[l])), nvml.SUCCESS
		}
	}
}

// PartitionMIG enables MIG on GPU i and creates n GPU instances of the profile, each with one
// compute instance spanning it.
func PartitionMIG(t testing.TB, srv *mockserver.Server, i, profile, n int) {
	t.Helper()
	dev := srv.Devices[i]
	if r, _ := dev.SetMigMode(nvml.DEVICE_MIG_ENABLE); r != nvml.SUCCESS {
		t.Fatalf("MIG mode: %v", r)
	}
	info, r := dev.GetGpuInstanceProfileInfo(profile)
	if r != nvml.SUCCESS {
		t.Fatalf("GI profile %d: %v", profile, r)
	}
	for k := 0; k < n; k++ {
		gi, r := dev.CreateGpuInstance(&info)
		if r != nvml.SUCCESS {
			t.Fatalf("create GI: %v", r)
		}
		ciProf, r := gi.GetComputeInstanceProfileInfo(ciProfileFor(profile), nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if r != nvml.SUCCESS {
			t.Fatalf("CI profile: %v", r)
		}
		if _, r := gi.CreateComputeInstance(&ciProf); r != nvml.SUCCESS {
			t.Fatalf("create CI: %v", r)
		}
	}
}

// ciProfileFor maps a GPU instance profile to the compute instance profile spanning it.
func ciProfileFor(gi int) int {
	switch gi {
	case nvml.GPU_INSTANCE_PROFILE_1_SLICE:
		return nvml.COMPUTE_INSTANCE_PROFILE_1_SLICE
	case nvml.GPU_INSTANCE_PROFILE_2_SLICE:
		return nvml.COMPUTE_INSTANCE_PROFILE_2_SLICE
	case nvml.GPU_INSTANCE_PROFILE_3_SLICE:
		return nvml.COMPUTE_INSTANCE_PROFILE_3_SLICE
	case nvml.GPU_INSTANCE_PROFILE_4_SLICE:
		return nvml.COMPUTE_INSTANCE_PROFILE_4_SLICE
	default:
		return nvml.COMPUTE_INSTANCE_PROFILE_7_SLICE
	}
}
