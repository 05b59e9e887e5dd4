package mig

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

// place gives every instance the layout asks of GPU g a placement of its own, the largest
// first, trying each of a profile's placements in turn: the driver refuses an instance that
// overlaps another, and a greedy first fit can strand a layout that does fit.
func place(g detect.GPU, want map[string]int) ([]Instance, error) {
	byName := map[string]detect.MIGProfile{}
	for _, p := range g.MIGProfiles {
		byName[p.Name] = p
	}
	var todo []detect.MIGProfile
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("GPU %d (%s) does not offer MIG profile %s; it offers %s", g.Index, g.Product, name, profileNames(g))
		}
		if want[name] > p.Max {
			return nil, fmt.Errorf("GPU %d (%s) holds at most %d of MIG profile %s, not %d", g.Index, g.Product, p.Max, name, want[name])
		}
		for i := 0; i < want[name]; i++ {
			todo = append(todo, p)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return size(todo[i]) > size(todo[j]) })
	out := make([]Instance, len(todo))
	if !fit(todo, out, 0, 0) {
		return nil, fmt.Errorf("GPU %d (%s) cannot hold %s together: their memory slices overlap; use fewer or smaller instances",
			g.Index, g.Product, describe(names, want))
	}
	return out, nil
}

// fit places todo[i:] around the slices already used (a bit per memory slice).
func fit(todo []detect.MIGProfile, out []Instance, i int, used uint64) bool {
	if i == len(todo) {
		return true
	}
	p := todo[i]
	for _, pl := range p.Placements {
		if pl.Size <= 0 || pl.Start < 0 || pl.Start+pl.Size > 64 {
			continue
		}
		mask := (uint64(1)<<pl.Size - 1) << pl.Start
		if used&mask != 0 {
			continue
		}
		out[i] = Instance{Profile: p.Name, ProfileID: p.ID, Placement: pl}
		if fit(todo, out, i+1, used|mask) {
			return true
		}
	}
	return false
}

func size(p detect.MIGProfile) int {
	if len(p.Placements) > 0 {
		return p.Placements[0].Size
	}
	return p.Slices
}

func profileNames(g detect.GPU) string {
	var n []string
	for _, p := range g.MIGProfiles {
		n = append(n, p.Name)
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

func describe(names []string, want map[string]int) string {
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%d×%s", want[n], n))
	}
	return strings.Join(parts, ", ")
}

// ProfileName is NVIDIA's name for a GPU instance profile: slices and memory ("1g.5gb"), with
// the suffix of its media-engine variant (NVML profile IDs 7, 8: +me; 10–12, 17: +gfx; 13, 14:
// -me; 15, 16: +me.all). The memory is NVIDIA's rounding: the profile's share of the GPU's
// memory, up to eighths, of the GPU's memory in whole GB (4864 of 40960 MiB is 5gb, 40192 is
// 40gb). ciSlices, when smaller than the GPU instance, names a compute instance that fills only
// part of it ("1c.2g.10gb").
func ProfileName(id, slices int, memoryMiB, gpuMiB uint64, ciSlices int) string {
	gb := uint64(math.Round(float64(memoryMiB) / 1024))
	if gpuMiB > 0 {
		share := math.Ceil(float64(memoryMiB)/float64(gpuMiB)*8) / 8
		gb = uint64(math.Round(share * float64((gpuMiB+1023)/1024)))
	}
	gb = max(gb, 1)
	name := fmt.Sprintf("%dg.%dgb", slices, gb)
	switch id {
	case 7, 8:
		name += "+me"
	case 10, 11, 12, 17:
		name += "+gfx"
	case 13, 14:
		name += "-me"
	case 15, 16:
		name += "+me.all"
	}
	if ciSlices != 0 && ciSlices < slices {
		name = fmt.Sprintf("%dc.%s", ciSlices, name)
	}
	return name
}
