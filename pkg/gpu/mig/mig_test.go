package mig_test

import (
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	migspec "github.com/outpostk8s/outpost/pkg/spec/mig"
)

func node(t *testing.T) *detect.Node {
	t.Helper()
	n, err := mockgpu.DGXA100().Detect()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func profiles(p mig.GPUPlan) string {
	var s []string
	for _, i := range p.Instances {
		s = append(s, i.Profile)
	}
	return strings.Join(s, ",")
}

func TestBuiltInLayouts(t *testing.T) {
	n := node(t)
	for _, c := range []struct{ name, want string }{
		{"all-1g.5gb", "1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb,1g.5gb"},
		{"all-1g.10gb", "1g.10gb,1g.10gb,1g.10gb,1g.10gb"},
		{"all-3g.20gb", "3g.20gb,3g.20gb"},
		{"all-7g.40gb", "7g.40gb"},
		{"all-1g.5gb+me", "1g.5gb+me"},
		{"all-balanced", "3g.20gb,2g.10gb,1g.5gb,1g.5gb"},
		{"all-enabled", ""},
	} {
		plan, err := mig.Resolve(c.name, nil, n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(plan) != 8 {
			t.Fatalf("%s: %d GPUs planned", c.name, len(plan))
		}
		for _, p := range plan {
			if !p.Enabled || profiles(p) != c.want {
				t.Errorf("%s: GPU %d: enabled %v, %s; want %s", c.name, p.Index, p.Enabled, profiles(p), c.want)
			}
		}
	}
	plan, err := mig.Resolve("all-disabled", nil, n)
	if err != nil || len(plan) != 8 || plan[3].Enabled || len(plan[3].Instances) != 0 {
		t.Fatalf("all-disabled: %+v %v", plan, err)
	}
}

// Every instance of a plan has a placement of its profile, and none overlap.
func TestPlacementsDoNotOverlap(t *testing.T) {
	n := node(t)
	for _, name := range []string{"all-1g.5gb", "all-balanced", "all-1g.10gb", "all-3g.20gb"} {
		plan, err := mig.Resolve(name, nil, n)
		if err != nil {
			t.Fatal(err)
		}
		var used uint64
		for _, in := range plan[0].Instances {
			mask := (uint64(1)<<in.Placement.Size - 1) << in.Placement.Start
			if used&mask != 0 || in.Placement.Size == 0 {
				t.Fatalf("%s: %+v overlaps or is empty", name, in)
			}
			used |= mask
		}
	}
}

func TestCustomFile(t *testing.T) {
	n := node(t)
	f, err := migspec.Parse([]byte(`version: v1
mig-configs:
  half:
    - devices: [0, 1, 2, 3]
      mig-enabled: false
    - devices: [4, 5, 6, 7]
      mig-enabled: true
      mig-devices:
        "4g.20gb": 1
        "3g.20gb": 1
  all-balanced:
    - devices: all
      mig-enabled: true
      mig-devices:
        "2g.10gb": 3
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := mig.Resolve("half", f, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 8 || plan[0].Enabled || !plan[4].Enabled || profiles(plan[4]) != "4g.20gb,3g.20gb" && profiles(plan[4]) != "3g.20gb,4g.20gb" {
		t.Fatalf("half: %+v", plan)
	}
	// A custom layout may take a built-in name: the file's wins.
	plan, err = mig.Resolve("all-balanced", f, n)
	if err != nil || profiles(plan[0]) != "2g.10gb,2g.10gb,2g.10gb" {
		t.Fatalf("the file's all-balanced: %+v %v", plan, err)
	}
}

func TestRefusals(t *testing.T) {
	n := node(t)
	for _, c := range []struct{ name, file, want string }{
		{"no-such", "", `unknown MIG layout "no-such"`},
		{"all-2g.20gb", "", "does not offer MIG profile 2g.20gb; it offers 1g.5gb"},
		{"big", "version: v1\nmig-configs:\n  big:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"7g.40gb\": 1, \"1g.5gb\": 1}\n", "cannot hold 1×1g.5gb, 1×7g.40gb together"},
		{"many", "version: v1\nmig-configs:\n  many:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"3g.20gb\": 3}\n", "holds at most 2 of MIG profile 3g.20gb, not 3"},
	} {
		var f *migspec.File
		if c.file != "" {
			var err error
			if f, err = migspec.Parse([]byte(c.file)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := mig.Resolve(c.name, f, n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// A GPU that lists no profiles while MIG is off is turned on first, then resolved.
func TestUnresolvedWithoutProfiles(t *testing.T) {
	n := node(t)
	for i := range n.GPUs {
		n.GPUs[i].MIGProfiles = nil
	}
	plan, err := mig.Resolve("all-1g.5gb", nil, n)
	if err != nil || !plan[0].Enabled || !plan[0].Unresolved {
		t.Fatalf("%+v %v", plan, err)
	}
	if !mig.Differs(n.GPUs[0], plan[0]) {
		t.Fatal("an unresolved plan differs from a GPU with MIG off")
	}
}

func TestDiffers(t *testing.T) {
	n := node(t)
	plan, _ := mig.Resolve("all-disabled", nil, n)
	if mig.Differs(n.GPUs[0], plan[0]) {
		t.Fatal("MIG off differs from all-disabled")
	}
	plan, _ = mig.Resolve("all-7g.40gb", nil, n)
	g := n.GPUs[0]
	if !mig.Differs(g, plan[0]) {
		t.Fatal("MIG off does not differ from all-7g.40gb")
	}
	g.MIGEnabled, g.MIG = true, []detect.MIGDevice{{Profile: "7g.40gb"}}
	if mig.Differs(g, plan[0]) {
		t.Fatal("a GPU laid out as all-7g.40gb differs from it")
	}
	g.MIGPending = true
	if !mig.Differs(g, plan[0]) {
		t.Fatal("a pending mode change does not differ")
	}
}

func TestProfileName(t *testing.T) {
	for _, c := range []struct {
		id, slices int
		mem, gpu   uint64
		ci         int
		want       string
	}{{0, 1, 4864, 40960, 0, "1g.5gb"}, {7, 1, 4864, 40960, 0, "1g.5gb+me"}, {9, 1, 9856, 40960, 0, "1g.10gb"},
		{4, 7, 40192, 40960, 0, "7g.40gb"}, {2, 3, 19968, 40960, 0, "3g.20gb"}, {1, 2, 9856, 40960, 1, "1c.2g.10gb"},
		// H100 80GB HBM3 (81559 MiB): NVIDIA's 1g.10gb, 3g.40gb, 7g.80gb, 1g.20gb
		{0, 1, 9856, 81559, 0, "1g.10gb"}, {2, 3, 40192, 81559, 0, "3g.40gb"}, {4, 7, 80384, 81559, 0, "7g.80gb"},
		{9, 1, 19968, 81559, 0, "1g.20gb"}, {15, 1, 9856, 81559, 0, "1g.10gb+me.all"}, {0, 1, 512, 0, 0, "1g.1gb"}} {
		if got := mig.ProfileName(c.id, c.slices, c.mem, c.gpu, c.ci); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}
