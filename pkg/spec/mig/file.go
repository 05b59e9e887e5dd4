// Package mig reads MIG layout files in NVIDIA mig-parted's format and knows the layout names
// a node may ask for (built in or the file's). It is a leaf, so config can check a layout
// without linking the GPU code; resolving a layout against a node's GPUs is pkg/gpu/mig's.
package mig

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

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

// Includes reports whether the entry sets GPU i.
func (d Devices) Includes(i int) bool {
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
