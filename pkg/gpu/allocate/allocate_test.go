package allocate

import (
	"fmt"
	"sort"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// Two NVLink islands of four GPUs, no links between them.
func islands() (map[string]resources.Device, map[string][]string) {
	devs := map[string]resources.Device{}
	links := map[string][]string{}
	bus := func(i int) string { return fmt.Sprintf("bus%d", i) }
	for i := 0; i < 8; i++ {
		devs[fmt.Sprintf("gpu%d", i)] = resources.Device{ID: fmt.Sprintf("gpu%d", i), GPUIndex: i, BusID: bus(i)}
		for j := 0; j < 8; j++ {
			if i != j && i/4 == j/4 {
				links[bus(i)] = append(links[bus(i)], bus(j))
			}
		}
	}
	return devs, links
}

func sorted(s []string) []string { sort.Strings(s); return s }

func TestPrefersNVLinkedGPUs(t *testing.T) {
	devs, links := islands()
	got := sorted(Preferred([]string{"gpu0", "gpu4", "gpu5", "gpu2"}, []string{"gpu4"}, 2, devs, links))
	if fmt.Sprint(got) != "[gpu4 gpu5]" {
		t.Errorf("got %v, want the linked pair gpu4+gpu5", got)
	}
	got = sorted(Preferred([]string{"gpu0", "gpu4", "gpu1", "gpu6"}, nil, 2, devs, links))
	if a, b := got[0][3]-'0', got[1][3]-'0'; a/4 != b/4 {
		t.Errorf("got %v: pair spans islands", got)
	}
}

func TestSpreadsTimeSliceReplicasAcrossGPUs(t *testing.T) {
	devs, links := islands()
	for _, g := range []string{"gpu0", "gpu1"} {
		for k := 0; k < 2; k++ {
			id := fmt.Sprintf("%s::%d", g, k)
			d := devs[g]
			d.ID = id
			devs[id] = d
		}
	}
	got := sorted(Preferred([]string{"gpu0::0", "gpu0::1", "gpu1::0", "gpu1::1"}, nil, 2, devs, links))
	if fmt.Sprint(got) != "[gpu0::0 gpu1::0]" {
		t.Errorf("got %v, want one replica of each GPU", got)
	}
}
