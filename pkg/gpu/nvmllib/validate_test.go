package nvmllib

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// Each device is checked under the name CUDA knows it by: a GPU's UUID, a MIG device's own MIG
// UUID for Outpost's MIG-<GPU>/<GI>/<CI>; an unknown ID fails without a check.
func TestValidateNamesDevicesAsCUDADoes(t *testing.T) {
	srv := dgxa100.New()
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
		dev.GetMigDeviceHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
		if i == 4 {
			dev.MigMode = nvml.DEVICE_MIG_ENABLE
			mig := &mock.Device{GetUUIDFunc: func() (string, nvml.Return) { return "MIG-4-b", nvml.SUCCESS },
				GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return 2, nvml.SUCCESS },
				GetComputeInstanceIdFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS }}
			dev.GetMigDeviceHandleByIndexFunc = func(j int) (nvml.Device, nvml.Return) {
				if j == 0 {
					return mig, nvml.SUCCESS
				}
				return nil, nvml.ERROR_NOT_FOUND
			}
		}
	}
	l := New(srv)
	var mu sync.Mutex
	var checked []string
	l.Check = func(id string) gpulib.Validation {
		mu.Lock()
		checked = append(checked, id)
		mu.Unlock()
		return gpulib.Validation{OK: id != "MIG-4-b", Reason: map[bool]string{true: "run the kernel: CUDA_ERROR_ECC_UNCORRECTABLE"}[id == "MIG-4-b"], Millis: 900}
	}
	gpu0, _ := srv.Devices[0].GetUUID()
	gpu4, _ := srv.Devices[4].GetUUID()
	migID := fmt.Sprintf("MIG-%s/2/0", gpu4)
	vs, err := l.Validate([]string{gpu0, migID, "GPU-nope"})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(checked)
	if len(checked) != 2 || checked[0] != gpu0 || checked[1] != "MIG-4-b" {
		t.Errorf("CUDA was given %v", checked)
	}
	if len(vs) != 3 || !vs[0].OK || vs[0].ID != gpu0 || vs[1].OK || vs[1].ID != migID || vs[1].Reason == "" || vs[2].OK || vs[2].Reason != "no such GPU or MIG device" {
		t.Errorf("results %+v", vs)
	}
	if _, err := New(srv).Validate([]string{gpu0}); err == nil {
		t.Error("a library without a checker validated")
	}
}
