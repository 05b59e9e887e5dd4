// Package sharing reads GPU time-slicing configs in the NVIDIA device plugin's format
// (`version: v1`, `sharing.timeSlicing.resources[]` with name, replicas and rename, and
// renameByDefault), so configs written for the GPU Operator work unchanged. A node picks one by
// name with the label nvidia.com/device-plugin.config, from a directory of NAME.yaml files.
package sharing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ConfigLabel is the Node label that names the config a node uses, as the GPU Operator's.
const ConfigLabel = "nvidia.com/device-plugin.config"

// DefaultName is the config a node without the label uses, when the directory has one.
const DefaultName = "default"

// Config is one config: how many times each resource's devices are advertised, and under
// which name.
type Config struct {
	Version string  `json:"version"`
	Sharing Sharing `json:"sharing"`
}

// Sharing holds the time-slicing part; MPS is not supported.
type Sharing struct {
	TimeSlicing TimeSlicing `json:"timeSlicing"`
	MPS         any         `json:"mps,omitempty"`
}

// TimeSlicing is the device plugin's time-slicing section.
type TimeSlicing struct {
	RenameByDefault            bool       `json:"renameByDefault,omitempty"`
	FailRequestsGreaterThanOne bool       `json:"failRequestsGreaterThanOne,omitempty"`
	Resources                  []Resource `json:"resources,omitempty"`
}

// Resource is one shared resource.
type Resource struct {
	Name     string `json:"name"`
	Rename   string `json:"rename,omitempty"`
	Replicas int    `json:"replicas"`
	// Devices (a subset of GPUs) is in the format but not supported: every device is shared.
	Devices any `json:"devices,omitempty"`
}

// Names may leave out the nvidia.com/ prefix, as the device plugin allows; what follows it must
// be a DNS subdomain. A resource shared is one Outpost advertises: the GPU or a MIG profile.
const prefix = "nvidia.com/"

var (
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	advertised   = regexp.MustCompile(`^nvidia\.com/(gpu|mig-[0-9]+g\.[0-9]+gb(\+me)?)$`)
)

func qualify(n string) (string, bool) {
	if !strings.HasPrefix(n, prefix) {
		n = prefix + n
	}
	rest := strings.TrimPrefix(n, prefix)
	return n, len(rest) <= 63 && dnsSubdomain.MatchString(rest)
}

// Parse reads and checks one config; the errors name the field and the fix.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("not a device plugin config (version: v1, sharing.timeSlicing.resources): %w", err)
	}
	if c.Version != "v1" {
		return nil, fmt.Errorf("version %q: only v1 is known", c.Version)
	}
	if c.Sharing.MPS != nil {
		return nil, errors.New("sharing.mps: MPS is not supported, only timeSlicing")
	}
	seen := map[string]bool{}
	rs := c.Sharing.TimeSlicing.Resources
	for i, r := range rs {
		at := fmt.Sprintf("sharing.timeSlicing.resources[%d]", i)
		name, _ := qualify(r.Name)
		rename, renameOK := qualify(r.Rename)
		switch {
		case !advertised.MatchString(name):
			return nil, fmt.Errorf("%s.name %q: want nvidia.com/gpu or nvidia.com/mig-<profile>", at, r.Name)
		case seen[name]:
			return nil, fmt.Errorf("%s.name %s is listed twice", at, name)
		case r.Replicas < 1:
			return nil, fmt.Errorf("%s.replicas %d: must be 1 or more", at, r.Replicas)
		case r.Rename != "" && !renameOK:
			return nil, fmt.Errorf("%s.rename %q: want a resource name under nvidia.com/ (lower-case letters, digits, '-', '.'; 63 at most)", at, r.Rename)
		case r.Devices != nil:
			return nil, fmt.Errorf("%s.devices: sharing a subset of the GPUs is not supported; drop it to share them all", at)
		}
		seen[name] = true
		rs[i].Name = name
		if r.Rename != "" {
			rs[i].Rename = rename
		}
	}
	if c.Sharing.TimeSlicing.FailRequestsGreaterThanOne {
		return nil, errors.New("sharing.timeSlicing.failRequestsGreaterThanOne is not supported; drop it")
	}
	return &c, nil
}

// For says how resource name is advertised: its replicas (0: not in the config) and name.
func (c *Config) For(name string) (replicas int, advertised string) {
	if c == nil {
		return 0, name
	}
	for _, r := range c.Sharing.TimeSlicing.Resources {
		if r.Name != name {
			continue
		}
		switch {
		case r.Rename != "":
			return r.Replicas, r.Rename
		case c.Sharing.TimeSlicing.RenameByDefault && r.Replicas > 1:
			return r.Replicas, name + ".shared"
		}
		return r.Replicas, name
	}
	return 0, name
}

// Set is the configs a node may choose from: one file, or a directory of NAME.yaml files.
type Set struct {
	Path    string
	Configs map[string]*Config // by name; a single file's is under DefaultName
}

// Load reads and checks every config under path (a file or a directory).
func Load(path string) (*Set, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("GPU sharing config: %w", err)
	}
	s := &Set{Path: path, Configs: map[string]*Config{}}
	files := map[string]string{DefaultName: path}
	if fi.IsDir() {
		files = map[string]string{}
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("GPU sharing config: %w", err)
		}
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
				files[n] = filepath.Join(path, e.Name())
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("GPU sharing config %s: no NAME.yaml files in the directory", path)
		}
	}
	for name, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("GPU sharing config: %w", err)
		}
		c, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("GPU sharing config %s: %w", f, err)
		}
		s.Configs[name] = c
	}
	return s, nil
}

// Pick returns the config the label value names ("" for the default); nil, with no error,
// when there is no default. A name the set lacks is an error naming the ones it has.
func (s *Set) Pick(label string) (*Config, error) {
	if s == nil {
		return nil, nil
	}
	if label == "" {
		return s.Configs[DefaultName], nil
	}
	if c, ok := s.Configs[label]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("label %s=%s: no such config in %s (have %s)", ConfigLabel, label, s.Path, strings.Join(s.Names(), ", "))
}

// Names lists the configs, sorted.
func (s *Set) Names() []string {
	var n []string
	for k := range s.Configs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
