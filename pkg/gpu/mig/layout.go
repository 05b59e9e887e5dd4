// Package mig turns a declared MIG layout into what each GPU must become. Layouts are named:
// built in (all-disabled, all-enabled, all-balanced, and all-<profile> for every profile a GPU
// offers) or custom, from a file in NVIDIA mig-parted's format. Resolve checks a layout against
// the GPUs the node has and places every instance, so nothing is changed on a GPU for a layout
// it cannot hold. Applying a plan is the GPU library's job (gpulib.Lib.ApplyMIG).
package mig

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

// Labels: the layout a user asks for, and how applying it went (NVIDIA's MIG manager's names).
const (
	ConfigLabel = "nvidia.com/mig.config"
	StateLabel  = "nvidia.com/mig.config.state"
)

// States of StateLabel.
const (
	StatePending   = "pending"   // waiting: a pod holds a GPU that would change
	StateRebooting = "rebooting" // MIG mode waits for a GPU reset or a reboot
	StateSuccess   = "success"
	StateFailed    = "failed"
)

// Instance is one GPU instance to create, with one compute instance that fills it.
type Instance struct {
	Profile   string           `json:"profile"`
	ProfileID int              `json:"profileID"`
	Placement detect.Placement `json:"placement"`
}

// GPUPlan is what one GPU must become.
type GPUPlan struct {
	Index     int        `json:"index"`
	UUID      string     `json:"uuid"`
	Enabled   bool       `json:"enabled"` // MIG mode
	Instances []Instance `json:"instances,omitempty"`
	// Unresolved: the GPU does not list its profiles with MIG off; MIG mode is turned on first
	// and the layout resolved again.
	Unresolved bool `json:"unresolved,omitempty"`
}

// Result is what applying a GPUPlan did.
type Result struct {
	// ResetNeeded: the MIG mode change waits for a GPU reset or a reboot; nothing else was done.
	ResetNeeded bool `json:"resetNeeded,omitempty"`
}

// File is a set of custom layouts in mig-parted's format.
type File struct {
	Version string             `json:"version"`
	Configs map[string][]Entry `json:"mig-configs"`
}

// Entry sets the GPUs it names.
type Entry struct {
	Devices    Devices        `json:"devices"`
	MIGEnabled bool           `json:"mig-enabled"`
	MIGDevices map[string]int `json:"mig-devices,omitempty"`
}

// Devices is "all" or a list of GPU indexes.
type Devices struct {
	All     bool
	Indexes []int
}

func (d *Devices) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "all" {
			return fmt.Errorf("devices %q: use all or a list of GPU indexes", s)
		}
		d.All = true
		return nil
	}
	if err := json.Unmarshal(b, &d.Indexes); err != nil {
		return fmt.Errorf("devices: use all or a list of GPU indexes")
	}
	return nil
}

func (d Devices) MarshalJSON() ([]byte, error) {
	if d.All {
		return json.Marshal("all")
	}
	return json.Marshal(d.Indexes)
}

func (d Devices) names(i int) bool {
	if d.All {
		return true
	}
	for _, x := range d.Indexes {
		if x == i {
			return true
		}
	}
	return false
}

// Parse reads a layout file; unknown keys (mig-parted's device-filter among them) are refused
// rather than ignored, so a layout never means less than it says.
func Parse(b []byte) (*File, error) {
	f := &File{}
	if err := yaml.UnmarshalStrict(b, f); err != nil {
		return nil, err
	}
	if f.Version != "v1" {
		return nil, fmt.Errorf("version %q: only v1 is known", f.Version)
	}
	if len(f.Configs) == 0 {
		return nil, fmt.Errorf("no mig-configs")
	}
	for name, entries := range f.Configs {
		if len(entries) == 0 {
			return nil, fmt.Errorf("mig-configs %s: no entries", name)
		}
		for _, e := range entries {
			if !e.Devices.All && len(e.Devices.Indexes) == 0 {
				return nil, fmt.Errorf("mig-configs %s: an entry names no devices", name)
			}
			if !e.MIGEnabled && len(e.MIGDevices) > 0 {
				return nil, fmt.Errorf("mig-configs %s: mig-devices with mig-enabled false", name)
			}
			for p, n := range e.MIGDevices {
				if n < 1 {
					return nil, fmt.Errorf("mig-configs %s: %s: %d instances", name, p, n)
				}
			}
		}
	}
	return f, nil
}

// Load reads and parses a layout file; "" is no file.
func Load(path string) (*File, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Has reports whether name is a layout: the file's, or a built-in one's shape (whether the
// GPUs offer an all-<profile>'s profile is Resolve's to say).
func (f *File) Has(name string) bool {
	if f != nil {
		if _, ok := f.Configs[name]; ok {
			return true
		}
	}
	return name == "all-disabled" || name == "all-enabled" || name == "all-balanced" || strings.HasPrefix(name, "all-") && len(name) > 4
}

// balanced is mig-parted's all-balanced: two of the smallest instance, one of two slices and
// one of three (2×1g.5gb, 2g.10gb, 3g.20gb on an A100 40GB), by NVML's profile IDs.
func balanced() []struct{ id, count int } { return []struct{ id, count int }{{0, 2}, {1, 1}, {2, 1}} }

// entries is the layout's entries for the node: the file's first (a custom layout may take a
// built-in name), then the built-ins.
func (f *File) entries(name string, n *detect.Node) ([]Entry, error) {
	if f != nil {
		if e, ok := f.Configs[name]; ok {
			return e, nil
		}
	}
	switch name {
	case "all-disabled":
		return []Entry{{Devices: Devices{All: true}}}, nil
	case "all-enabled":
		return []Entry{{Devices: Devices{All: true}, MIGEnabled: true}}, nil
	case "all-balanced":
		var out []Entry
		for _, g := range n.GPUs {
			if !g.MIGCapable {
				continue
			}
			e := Entry{Devices: Devices{Indexes: []int{g.Index}}, MIGEnabled: true, MIGDevices: map[string]int{}}
			for _, b := range balanced() {
				for _, p := range g.MIGProfiles {
					if p.ID == b.id {
						e.MIGDevices[p.Name] = b.count
					}
				}
			}
			out = append(out, e)
		}
		return out, nil
	}
	if p, ok := strings.CutPrefix(name, "all-"); ok && p != "" {
		var out []Entry
		for _, g := range n.GPUs {
			if !g.MIGCapable {
				continue
			}
			count := 1 // unknown profiles (MIG off): resolved once MIG is on
			for _, q := range g.MIGProfiles {
				if q.Name == p {
					count = q.Max
				}
			}
			out = append(out, Entry{Devices: Devices{Indexes: []int{g.Index}}, MIGEnabled: true, MIGDevices: map[string]int{p: count}})
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown MIG layout %q: the built-in ones are all-disabled, all-enabled, all-balanced and all-<profile> (%s); custom ones come from --gpu-mig-config-file",
		name, offered(n))
}

// offered lists the profiles the node's GPUs offer, for messages.
func offered(n *detect.Node) string {
	seen := map[string]bool{}
	var names []string
	for _, g := range n.GPUs {
		for _, p := range g.MIGProfiles {
			if !seen[p.Name] {
				seen[p.Name] = true
				names = append(names, p.Name)
			}
		}
	}
	if len(names) == 0 {
		return "this node's GPUs list no profiles"
	}
	return "this node's GPUs offer " + strings.Join(names, ", ")
}

// Resolve is what every GPU the layout names must become, each instance placed. A GPU no entry
// names is not in the plan. Errors name the layout, the GPU and the fix; nothing has been changed.
func Resolve(name string, f *File, n *detect.Node) ([]GPUPlan, error) {
	entries, err := f.entries(name, n)
	if err != nil {
		return nil, err
	}
	var plan []GPUPlan
	for _, g := range n.GPUs {
		var e *Entry
		for i := range entries { // the last entry naming the GPU wins
			if entries[i].Devices.names(g.Index) {
				e = &entries[i]
			}
		}
		if e == nil {
			continue
		}
		if !e.MIGEnabled {
			if g.MIGCapable {
				plan = append(plan, GPUPlan{Index: g.Index, UUID: g.UUID})
			}
			continue
		}
		if !g.MIGCapable {
			if e.Devices.All {
				continue // "all" means every GPU that can
			}
			return nil, fmt.Errorf("MIG layout %s: GPU %d (%s) cannot do MIG", name, g.Index, g.Product)
		}
		p := GPUPlan{Index: g.Index, UUID: g.UUID, Enabled: true}
		if len(e.MIGDevices) > 0 && len(g.MIGProfiles) == 0 {
			p.Unresolved = true
			plan = append(plan, p)
			continue
		}
		if p.Instances, err = place(g, e.MIGDevices); err != nil {
			return nil, fmt.Errorf("MIG layout %s: %w", name, err)
		}
		plan = append(plan, p)
	}
	return plan, nil
}

// Differs reports whether a GPU as detected is not yet what the plan says: only such GPUs are
// changed (and only they wait for the pods holding them).
func Differs(g detect.GPU, p GPUPlan) bool {
	if g.MIGEnabled != p.Enabled || g.MIGPending {
		return true
	}
	if !p.Enabled {
		return false
	}
	if p.Unresolved {
		return true
	}
	have := make([]string, 0, len(g.MIG))
	for _, m := range g.MIG {
		have = append(have, m.Profile)
	}
	want := make([]string, 0, len(p.Instances))
	for _, i := range p.Instances {
		want = append(want, i.Profile)
	}
	sort.Strings(have)
	sort.Strings(want)
	return strings.Join(have, ",") != strings.Join(want, ",")
}
