package sharing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// As the NVIDIA device plugin's docs write one.
const timeSliced = `version: v1
sharing:
  timeSlicing:
    renameByDefault: true
    resources:
    - name: nvidia.com/gpu
      replicas: 4
    - name: nvidia.com/mig-1g.5gb
      replicas: 2
      rename: nvidia.com/mig-1g.5gb.half
    - name: nvidia.com/mig-2g.10gb
      replicas: 1
`

func TestParseAndFor(t *testing.T) {
	c, err := Parse([]byte(timeSliced))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		replicas int
		as       string
	}{
		"nvidia.com/gpu":         {4, "nvidia.com/gpu.shared"}, // renameByDefault
		"nvidia.com/mig-1g.5gb":  {2, "nvidia.com/mig-1g.5gb.half"},
		"nvidia.com/mig-2g.10gb": {1, "nvidia.com/mig-2g.10gb"}, // not shared: not renamed
		"nvidia.com/mig-3g.20gb": {0, "nvidia.com/mig-3g.20gb"}, // not listed
	} {
		if r, as := c.For(name); r != want.replicas || as != want.as {
			t.Errorf("For(%s) = %d %s, want %d %s", name, r, as, want.replicas, want.as)
		}
	}
	// The prefix may be left out, as the device plugin allows.
	c, err = Parse([]byte("version: v1\nsharing: {timeSlicing: {resources: [{name: gpu, replicas: 3, rename: gpu-x3}]}}\n"))
	if r, as := c.For("nvidia.com/gpu"); err != nil || r != 3 || as != "nvidia.com/gpu-x3" {
		t.Errorf("unprefixed: %d %s %v", r, as, err)
	}
	var none *Config
	if r, as := none.For("nvidia.com/gpu"); r != 0 || as != "nvidia.com/gpu" {
		t.Errorf("nil config: %d %s", r, as)
	}
}

func TestParseRefusals(t *testing.T) {
	for in, want := range map[string]string{
		"version: v2\n": `version "v2": only v1 is known`,
		"version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 0}]}}\n":                                      "resources[0].replicas 0: must be 1 or more",
		"version: v1\nsharing: {timeSlicing: {resources: [{name: amd.com/gpu, replicas: 2}]}}\n":                                         `resources[0].name "amd.com/gpu"`,
		"version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 2, rename: Shared_GPU}]}}\n":                  `resources[0].rename "Shared_GPU"`,
		"version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 2}, {name: nvidia.com/gpu, replicas: 3}]}}\n": "listed twice",
		"version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 2, devices: [0]}]}}\n":                        "devices: sharing a subset",
		"version: v1\nsharing: {mps: {resources: [{name: nvidia.com/gpu, replicas: 2}]}}\n":                                              "MPS is not supported",
		"version: v1\nsharing: {timeSlicing: {failRequestsGreaterThanOne: true}}\n":                                                      "failRequestsGreaterThanOne is not supported",
		"version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replica: 2}]}}\n":                                       "unknown field",
		"version: [\n": "not a device plugin config",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
}

func TestLoadAndPick(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ts4.yaml"), []byte(timeSliced), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a config"), 0o644)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Pick(""); c != nil || err != nil {
		t.Errorf("no default.yaml: %v %v, want no config", c, err)
	}
	if c, err := s.Pick("ts4"); c == nil || err != nil {
		t.Errorf("ts4: %v %v", c, err)
	}
	if _, err := s.Pick("ts8"); err == nil || !strings.Contains(err.Error(), "nvidia.com/device-plugin.config=ts8: no such config") || !strings.Contains(err.Error(), "have ts4") {
		t.Errorf("unknown name: %v", err)
	}
	// One file: its config is the default.
	f := filepath.Join(dir, "ts4.yaml")
	if s, err := Load(f); err != nil || s.Configs[DefaultName] == nil {
		t.Errorf("single file: %v %v", s, err)
	}
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("version: v9\n"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("a bad file in the dir: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none")); err == nil {
		t.Error("missing path: no error")
	}
}
