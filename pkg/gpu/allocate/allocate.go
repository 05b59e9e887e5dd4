// Package allocate chooses which devices to prefer when the kubelet asks: GPUs linked by
// NVLink first, so multi-GPU jobs get the fast path, and distinct physical GPUs before a second
// time-slice of one already chosen.
package allocate

import (
	"sort"

	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// Preferred picks size device IDs from available, keeping every mustInclude ID. devs describes
// every ID; links maps a GPU's PCI bus ID to the bus IDs it has NVLinks to.
func Preferred(available, mustInclude []string, size int, devs map[string]resources.Device, links map[string][]string) []string {
	chosen := append([]string{}, mustInclude...)
	in := map[string]bool{}
	for _, id := range chosen {
		in[id] = true
	}
	linked := func(a, b string) bool {
		for _, p := range links[a] {
			if p == b {
				return true
			}
		}
		return false
	}
	for len(chosen) < size {
		best, bestScore := "", -1<<31
		cands := append([]string{}, available...)
		sort.Strings(cands)
		for _, id := range cands {
			if in[id] {
				continue
			}
			d := devs[id]
			score := 0
			if len(chosen) == 0 {
				// Seed with the GPU that has the most links to other available GPUs.
				for _, o := range available {
					if o != id && linked(d.BusID, devs[o].BusID) {
						score++
					}
				}
			}
			for _, c := range chosen {
				cd := devs[c]
				switch {
				case cd.BusID == d.BusID:
					score -= 100 // same physical GPU: a time-slice replica, last resort
				case linked(d.BusID, cd.BusID):
					score += 10
				}
			}
			if score > bestScore {
				best, bestScore = id, score
			}
		}
		if best == "" {
			break
		}
		chosen = append(chosen, best)
		in[best] = true
	}
	return chosen
}
