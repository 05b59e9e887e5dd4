package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"
)

// Setter is the part of a parsed command line the config file is merged into: urfave's
// *cli.Context satisfies it, and tests use a map.
type Setter interface {
	IsSet(name string) bool
	Set(name, value string) error
}

// Files lists the config file and then its drop-ins (config.yaml.d/*.yaml, by name), the order
// in which their values apply; later files override earlier ones. A missing main file is only
// an error when the user named it.
func Files(path string, explicit bool) ([]string, error) {
	var files []string
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if explicit || !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	drop, err := filepath.Glob(path + ".d/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("config drop-ins %s.d: %w", path, err)
	}
	more, _ := filepath.Glob(path + ".d/*.yml")
	drop = append(drop, more...)
	sort.Strings(drop)
	return append(files, drop...), nil
}

// Apply reads the files in order and sets every key the command line did not set. Keys are
// flag names; known lists which names exist. A key set on the command line keeps the
// command-line value: flags beat files.
func Apply(files []string, known map[string]bool, s Setter) error {
	merged := map[string]any{}
	origin := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("config file %s: %w", f, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("config file %s is not valid YAML (%v): fix it or move it aside", f, cleanYAMLErr(err))
		}
		flat, err := flatten(m)
		if err != nil {
			return fmt.Errorf("config file %s: %w", f, err)
		}
		for k, v := range flat {
			if !known[k] {
				return fmt.Errorf("config file %s: unknown key %q: keys are this command's flag names without dashes (see --help)", f, dotted(k, m))
			}
			merged[k] = v
			origin[k] = f
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s.IsSet(k) {
			continue
		}
		vals, err := scalars(merged[k])
		if err != nil {
			return fmt.Errorf("config file %s: key %q: %w", origin[k], k, err)
		}
		for _, v := range vals {
			if err := s.Set(k, v); err != nil {
				return fmt.Errorf("config file %s: key %q: invalid value %q: %w", origin[k], k, v, err)
			}
		}
	}
	return nil
}

func cleanYAMLErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	return strings.TrimPrefix(s, "yaml: ")
}

// Sections are config-file maps whose keys are flags with the section's prefix:
// gpu: {mig-strategy: mixed} is --gpu-mig-strategy.
var Sections = map[string]bool{"gpu": true}

func flatten(m map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range m {
		sub, isMap := v.(map[string]any)
		if !isMap {
			out[k] = v
			continue
		}
		if !Sections[k] {
			return nil, fmt.Errorf("key %q holds a map, but only these sections do: gpu", k)
		}
		for sk, sv := range sub {
			out[k+"-"+sk] = sv
		}
	}
	return out, nil
}

// dotted names a flattened section key the way the user wrote it (gpu.mode).
func dotted(k string, orig map[string]any) string {
	for sec := range Sections {
		if _, ok := orig[sec].(map[string]any); ok && strings.HasPrefix(k, sec+"-") {
			return sec + "." + strings.TrimPrefix(k, sec+"-")
		}
	}
	return k
}

// scalars turns a YAML value into flag strings: one per list element.
func scalars(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{t}, nil
	case bool:
		return []string{strconv.FormatBool(t)}, nil
	case float64:
		return []string{strconv.FormatFloat(t, 'f', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range t {
			s, err := scalars(e)
			if err != nil {
				return nil, err
			}
			if len(s) != 1 {
				return nil, fmt.Errorf("list elements must be plain values")
			}
			out = append(out, s...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value must be a string, number, boolean or list, not %T", v)
	}
}

// KnownFlags lists the names (and aliases) of a command's flags.
func KnownFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			m[n] = true
		}
	}
	return m
}
