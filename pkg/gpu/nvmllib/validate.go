package nvmllib

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// Validate checks each device with l.Check, naming it to CUDA as CUDA names it: a GPU by its
// UUID, a MIG device by its own MIG UUID, looked up from Outpost's ID through NVML.
func (l *Lib) Validate(ids []string) ([]gpulib.Validation, error) {
	if l.Check == nil {
		return nil, errors.New("GPU validation: no checker in this helper")
	}
	cudaIDs, err := l.cudaIDs()
	if err != nil {
		return nil, err
	}
	// The devices are checked at once, each in its own process: a node's start waits for the
	// slowest device, not the sum (a JIT compile and a context take about a second each).
	out := make([]gpulib.Validation, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		cuda, ok := cudaIDs[id]
		if !ok {
			out[i] = gpulib.Validation{ID: id, Reason: "no such GPU or MIG device"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = l.Check(cuda)
			out[i].ID = id
		}()
	}
	wg.Wait()
	return out, nil
}

// cudaIDs maps every GPU's UUID to itself and every MIG device's Outpost ID
// (MIG-<GPU UUID>/<GI>/<CI>) to its MIG UUID.
func (l *Lib) cudaIDs() (map[string]string, error) {
	if r := l.nvml.Init(); r != nvml.SUCCESS {
		return nil, fmt.Errorf("GPU validation: NVML init: %w", r)
	}
	defer l.nvml.Shutdown()
	n, r := l.nvml.DeviceGetCount()
	if r != nvml.SUCCESS {
		return nil, fmt.Errorf("GPU validation: device count: %w", r)
	}
	out := map[string]string{}
	for i := 0; i < n; i++ {
		dev, r := l.nvml.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue
		}
		uuid, r := dev.GetUUID()
		if r != nvml.SUCCESS {
			continue
		}
		out[uuid] = uuid
		if cur, _, r := dev.GetMigMode(); r != nvml.SUCCESS || cur != nvml.DEVICE_MIG_ENABLE {
			continue
		}
		slots, r := dev.GetMaxMigDeviceCount()
		if r != nvml.SUCCESS {
			continue
		}
		for j := 0; j < slots; j++ {
			m, r := dev.GetMigDeviceHandleByIndex(j)
			if r != nvml.SUCCESS {
				continue
			}
			migUUID, r1 := m.GetUUID()
			gi, r2 := m.GetGpuInstanceId()
			ci, r3 := m.GetComputeInstanceId()
			if r1 == nvml.SUCCESS && r2 == nvml.SUCCESS && r3 == nvml.SUCCESS {
				out["MIG-"+uuid+"/"+strconv.Itoa(gi)+"/"+strconv.Itoa(ci)] = migUUID
			}
		}
	}
	return out, nil
}
