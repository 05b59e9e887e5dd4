package resources

import (
	"maps"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

func node(t *testing.T, setup func(*mockserver.Server)) *detect.Node {
	t.Helper()
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	if setup != nil {
		setup(srv)
	}
	n, err := nvmllib.Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func count(rs []Resource) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Name] = len(r.Devices)
	}
	return m
}

func TestStrategies(t *testing.T) {
	plain := node(t, nil)
	allMIG := node(t, func(s *mockserver.Server) {
		for i := range s.Devices {
			gputest.PartitionMIG(t, s, i, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
		}
	})
	someMIG := node(t, func(s *mockserver.Server) {
		gputest.PartitionMIG(t, s, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
		gputest.PartitionMIG(t, s, 1, nvml.GPU_INSTANCE_PROFILE_3_SLICE, 2)
	})
	oneMIG := node(t, func(s *mockserver.Server) { gputest.PartitionMIG(t, s, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7) })
	for _, tc := range []struct {
		name    string
		n       *detect.Node
		cfg     Config
		want    map[string]int
		wantErr string
	}{
		{"none", plain, Config{Strategy: None, Replicas: 1}, map[string]int{"nvidia.com/gpu": 8}, ""},
		{"none ignores MIG", someMIG, Config{Strategy: None, Replicas: 1}, map[string]int{"nvidia.com/gpu": 8}, ""},
		{"single", allMIG, Config{Strategy: Single, Replicas: 1}, map[string]int{"nvidia.com/gpu": 56}, ""},
		{"single needs MIG everywhere", oneMIG, Config{Strategy: Single, Replicas: 1}, nil, "GPU 1"},
		{"single needs one profile", someMIG, Config{Strategy: Single, Replicas: 1}, nil, "one MIG profile"},
		{"single on plain GPUs", plain, Config{Strategy: Single, Replicas: 1}, nil, "MIG mode"},
		{"mixed", someMIG, Config{Strategy: Mixed, Replicas: 1}, map[string]int{"nvidia.com/gpu": 6, "nvidia.com/mig-1g.5gb": 7, "nvidia.com/mig-3g.20gb": 2}, ""},
		{"time-slicing", plain, Config{Strategy: None, Replicas: 4}, map[string]int{"nvidia.com/gpu": 32}, ""},
		{"bad replicas", plain, Config{Strategy: None, Replicas: 0}, nil, "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Build(tc.n, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := count(rs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %d want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestMixedNeedsMIGCapableGPU(t *testing.T) {
	n := node(t, nil)
	for i := range n.GPUs {
		n.GPUs[i].MIGCapable = false
	}
	if _, err := Build(n, Config{Strategy: Mixed, Replicas: 1}); err == nil || !strings.Contains(err.Error(), "MIG-capable") {
		t.Errorf("err = %v", err)
	}
}

func TestReplicaIDs(t *testing.T) {
	rs, _ := Build(node(t, nil), Config{Strategy: None, Replicas: 2})
	d := rs[0].Devices
	if d[0].ID != d[0].Visible+"::0" || d[1].ID != d[0].Visible+"::1" || BaseID(d[1].ID) != d[0].Visible {
		t.Errorf("replica ids %q %q", d[0].ID, d[1].ID)
	}
	if d[0].CDIName != "nvidia.com/gpu=0" {
		t.Errorf("cdi %q", d[0].CDIName)
	}
}

// A sharing config in the device plugin's format: per-resource replicas and names.
func TestSharingConfig(t *testing.T) {
	someMIG := node(t, func(s *mockserver.Server) {
		gputest.PartitionMIG(t, s, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
	})
	c, err := sharing.Parse([]byte("version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: true\n    resources:\n" +
		"    - {name: nvidia.com/gpu, replicas: 4}\n    - {name: nvidia.com/mig-1g.5gb, replicas: 2, rename: nvidia.com/mig-1g.5gb.half}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Build(someMIG, Config{Strategy: Mixed, Replicas: 1, Sharing: c})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := count(rs), map[string]int{"nvidia.com/gpu.shared": 28, "nvidia.com/mig-1g.5gb.half": 14}; !maps.Equal(got, want) {
		t.Errorf("resources %v, want %v", got, want)
	}
	// Two resources renamed to one name: refused, naming both.
	c, _ = sharing.Parse([]byte("version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 2, rename: nvidia.com/mig-1g.5gb}]}}\n"))
	if _, err := Build(someMIG, Config{Strategy: Mixed, Replicas: 1, Sharing: c}); err == nil || !strings.Contains(err.Error(), "would both be advertised as nvidia.com/mig-1g.5gb") {
		t.Errorf("clashing rename: %v", err)
	}
}

func TestParseStrategy(t *testing.T) {
	if _, err := ParseStrategy("auto"); err == nil {
		t.Error("accepted auto")
	}
}
