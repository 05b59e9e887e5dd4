// Package mig turns a declared MIG layout into what each GPU must become. Layouts are named:
// built in (all-disabled, all-enabled, all-balanced, and all-<profile> for every profile a GPU
// offers) or custom, from a file in NVIDIA mig-parted's format (read by pkg/spec/mig). Resolve
// checks a layout against the GPUs the node has and places every instance, so nothing is
// changed on a GPU for a layout it cannot hold. Applying a plan is the GPU library's job
// (gpulib.Lib.ApplyMIG).
package mig

import (
	"fmt"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	migspec "github.com/outpostk8s/outpost/pkg/spec/mig"
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

// balanced is mig-parted's all-balanced: two of the smallest instance, one of two slices and
// one of three (2×1g.5gb, 2g.10gb, 3g.20gb on an A100 40GB), by NVML's profile IDs.
func balanced() []struct{ id, count int } { return []struct{ id, count int }{{0, 2}, {1, 1}, {2, 1}} }

// layoutEntries is the layout's entries for the node: the file's first (a custom layout may
// take a built-in name), then the built-ins.
func layoutEntries(f *migspec.File, name string, n *detect.Node) ([]migspec.Entry, error) {
	if f != nil {
		if e, ok := f.Configs[name]; ok {
			return e, nil
		}
	}
	switch name {
	case "all-disabled":
		return []migspec.Entry{{Devices: migspec.Devices{All: true}}}, nil
	case "all-enabled":
		return []migspec.Entry{{Devices: migspec.Devices{All: true}, MIGEnabled: true}}, nil
	case "all-balanced":
		var out []migspec.Entry
		for _, g := range n.GPUs {
			if !g.MIGCapable {
				continue
			}
			e := migspec.Entry{Devices: migspec.Devices{Indexes: []int{g.Index}}, MIGEnabled: true, MIGDevices: map[string]int{}}
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
		var out []migspec.Entry
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
			out = append(out, migspec.Entry{Devices: migspec.Devices{Indexes: []int{g.Index}}, MIGEnabled: true, MIGDevices: map[string]int{p: count}})
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
func Resolve(name string, f *migspec.File, n *detect.Node) ([]GPUPlan, error) {
	entries, err := layoutEntries(f, name, n)
	if err != nil {
		return nil, err
	}
	var plan []GPUPlan
	for _, g := range n.GPUs {
		var e *migspec.Entry
		for i := range entries { // the last entry naming the GPU wins
			if entries[i].Devices.Includes(g.Index) {
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
