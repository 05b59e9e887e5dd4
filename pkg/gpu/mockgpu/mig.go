package mockgpu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// Profiles are the A100 40GB's GPU instance profiles as its driver lists them: NVML's profile
// IDs, instance counts, memory and placements (in eighths of the memory).
func Profiles() []detect.MIGProfile {
	pl := func(size int, starts ...int) []detect.Placement {
		var out []detect.Placement
		for _, s := range starts {
			out = append(out, detect.Placement{Start: s, Size: size})
		}
		return out
	}
	p := func(id, slices, max int, mem uint64, pls []detect.Placement) detect.MIGProfile {
		return detect.MIGProfile{ID: id, Name: mig.ProfileName(id, slices, mem, memMiB, 0), Slices: slices, Max: max, MemoryMiB: mem, Placements: pls}
	}
	return []detect.MIGProfile{
		p(0, 1, 7, 4864, pl(1, 0, 1, 2, 3, 4, 5, 6)),
		p(1, 2, 3, 9856, pl(2, 0, 2, 4)),
		p(2, 3, 2, 19968, pl(4, 0, 4)),
		p(3, 4, 1, 19968, pl(4, 0)),
		p(4, 7, 1, 40192, pl(8, 0)),
		p(7, 1, 1, 4864, pl(1, 0, 1, 2, 3, 4, 5, 6)),
		p(9, 1, 4, 9856, pl(2, 0, 2, 4, 6)),
	}
}

// migState is every GPU's MIG mode and instances. It lives in a file when the machine has one
// (the GPU helper is a new process for each Detect and ApplyMIG), else in memory.
type migState map[int]gpuMIG

type gpuMIG struct {
	Enabled   bool           `json:"enabled"`
	Instances []mig.Instance `json:"instances,omitempty"`
}

func (m *Machine) loadMIG() (migState, error) {
	m.migMu.Lock()
	defer m.migMu.Unlock()
	if m.StateFile == "" {
		if m.mig == nil {
			m.mig = migState{}
		}
		return m.mig, nil
	}
	st := migState{}
	b, err := os.ReadFile(m.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("mock MIG state %s: %w", m.StateFile, err)
	}
	return st, nil
}

func (m *Machine) saveMIG(st migState) error {
	m.migMu.Lock()
	defer m.migMu.Unlock()
	if m.StateFile == "" {
		m.mig = st
		return nil
	}
	b, _ := json.Marshal(st)
	tmp := m.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(m.StateFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.StateFile)
}

// migDevices are GPU i's MIG devices, named as the driver names them.
func migDevices(i int, g gpuMIG) []detect.MIGDevice {
	var out []detect.MIGDevice
	for gi, in := range g.Instances {
		mem := uint64(0)
		for _, p := range Profiles() {
			if p.ID == in.ProfileID {
				mem = p.MemoryMiB
			}
		}
		out = append(out, detect.MIGDevice{ID: fmt.Sprintf("MIG-%s/%d/0", UUID(i), gi+1), Profile: in.Profile,
			GPUInstanceID: gi + 1, MemoryMiB: mem})
	}
	return out
}

// migReadings are GPU i's MIG devices' memory values.
func migReadings(i int, g gpuMIG) []gpulib.MIGReading {
	var out []gpulib.MIGReading
	for _, d := range migDevices(i, g) {
		out = append(out, gpulib.MIGReading{ID: d.ID, Profile: d.Profile, GPUInstanceID: d.GPUInstanceID, ComputeInstanceID: d.ComputeInstanceID,
			FBUsedMiB: gpulib.Float(float64(d.GPUInstanceID)), FBFreeMiB: gpulib.Float(float64(d.MemoryMiB) - float64(d.GPUInstanceID)),
			FBTotalMiB: gpulib.Float(float64(d.MemoryMiB))})
	}
	return out
}

// ApplyMIG checks the plan as the driver would (known profiles, placements that exist and do
// not overlap) and records it.
func (m *Machine) ApplyMIG(p mig.GPUPlan) (mig.Result, error) {
	i := -1
	for k := 0; k < m.GPUs; k++ {
		if UUID(k) == p.UUID {
			i = k
		}
	}
	if i < 0 {
		return mig.Result{}, fmt.Errorf("nvml GPU %s: Invalid Argument", p.UUID)
	}
	st, err := m.loadMIG()
	if err != nil {
		return mig.Result{}, err
	}
	if !p.Enabled {
		st[i] = gpuMIG{}
		return mig.Result{}, m.saveMIG(st)
	}
	if p.Unresolved {
		st[i] = gpuMIG{Enabled: true, Instances: st[i].Instances}
		return mig.Result{}, m.saveMIG(st)
	}
	var used uint64
	for _, in := range p.Instances {
		if !offers(in) {
			return mig.Result{}, fmt.Errorf("GPU %d: MIG %s at slice %d: nvml create GPU instance: Insufficient Resources", i, in.Profile, in.Placement.Start)
		}
		mask := (uint64(1)<<in.Placement.Size - 1) << in.Placement.Start
		if used&mask != 0 {
			return mig.Result{}, fmt.Errorf("GPU %d: MIG %s at slice %d: nvml create GPU instance: Insufficient Resources", i, in.Profile, in.Placement.Start)
		}
		used |= mask
	}
	st[i] = gpuMIG{Enabled: true, Instances: p.Instances}
	return mig.Result{}, m.saveMIG(st)
}

// offers reports whether the instance's profile and placement are the A100's.
func offers(in mig.Instance) bool {
	for _, p := range Profiles() {
		if p.ID != in.ProfileID {
			continue
		}
		for _, pl := range p.Placements {
			if pl == in.Placement {
				return true
			}
		}
	}
	return false
}
