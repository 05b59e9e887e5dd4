// Package configfile reads config.yaml and its drop-ins into a command's flags. It links no
// Kubernetes code, so the small outer binary (cmd/outpost-outer) finds data-dir with it too.
package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
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
// flag names; known lists which names exist (nil: any name, for a reader that wants one key
// and leaves judging the rest to the command). A key set on the command line keeps the
// command-line value: flags beat files.
func Apply(files []string, known map[string]bool, s Setter) error {
	docs := make([]doc, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("config file %s: %w", f, err)
		}
		docs = append(docs, doc{name: f, raw: raw})
	}
	return apply(docs, known, s)
}

// doc is one config file's name and content.
type doc struct {
	name string
	raw  []byte
}

// entry is one flag a file gives: flag is the flag name, name the key as the user wrote it
// (gpu.mig-strategy for a section key), val the YAML value.
type entry struct {
	flag, name string
	val        *yaml.Node
}

// apply is Apply past the file reads, so the fuzz test can drive it with bytes.
func apply(docs []doc, known map[string]bool, s Setter) error {
	merged := map[string][]string{}
	origin := map[string]string{}
	for _, d := range docs {
		root, second, err := decode(d.raw)
		if err != nil {
			return fmt.Errorf("config file %s is not valid YAML (%s): fix it or move it aside", d.name, err)
		}
		if second != nil {
			// Only the first would count: say so rather than drop the rest without a word.
			return fmt.Errorf("config file %s: line %d starts a second YAML document (---): keep one per file, or put it in a drop-in under %s.d/", d.name, second.Line, d.name)
		}
		ents, err := entries(root)
		if err != nil {
			return fmt.Errorf("config file %s: %w", d.name, err)
		}
		for _, e := range ents {
			if known != nil && !known[e.flag] {
				return fmt.Errorf("config file %s: unknown key %q: keys are this command's flag names without dashes (see --help)", d.name, e.name)
			}
		}
		for _, e := range ents {
			vals, err := values(e.val)
			if err != nil {
				return fmt.Errorf("config file %s: key %q: %w", d.name, e.name, err)
			}
			// A null value still overrides an earlier file: a drop-in's "key:" puts the flag
			// back to its default.
			merged[e.flag] = vals
			origin[e.flag] = d.name
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
		for _, v := range merged[k] {
			if err := s.Set(k, v); err != nil {
				return fmt.Errorf("config file %s: key %q: invalid value %q: %w", origin[k], k, v, err)
			}
		}
	}
	return nil
}

// decode parses one file into its document node, nil when the file holds nothing, and also
// returns the start of a second document if there is one. The values stay YAML nodes so that
// each is later read as the text the user wrote: decoded into Go values, "mode: 0640" would
// become the number 416 and "node-name: 0123" the string "83".
func decode(raw []byte) (root, second *yaml.Node, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	root = &yaml.Node{}
	if err := dec.Decode(root); errors.Is(err, io.EOF) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, errors.New(cleanYAMLErr(err))
	}
	next := &yaml.Node{}
	if err := dec.Decode(next); errors.Is(err, io.EOF) || err == nil && isNull(next) {
		return root, nil, nil
	} else if err != nil {
		return nil, nil, errors.New(cleanYAMLErr(err))
	}
	return root, next, nil
}

func cleanYAMLErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// isSection says which top-level keys are sections: maps whose keys are flags with the
// section's prefix (gpu: {mig-strategy: mixed} is --gpu-mig-strategy).
func isSection(k string) bool { return k == "gpu" }

// entries lists the flags a document gives, sections flattened, in file order.
func entries(root *yaml.Node) ([]entry, error) {
	if root == nil {
		return nil, nil
	}
	top := root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	top = deref(top)
	if isNull(top) {
		return nil, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the top level is %s, not a map of flag names to values such as \"node-name: edge-1\"", kindName(top))
	}
	m := &merger{done: map[*yaml.Node][]pair{}, busy: map[*yaml.Node]bool{}}
	ps, err := m.pairs(top)
	if err != nil {
		return nil, err
	}
	var out []entry
	seen := map[string]string{}
	add := func(e entry) error {
		if prev, dup := seen[e.flag]; dup {
			return fmt.Errorf("key %q is given twice (also as %q): keep one", e.name, prev)
		}
		seen[e.flag] = e.name
		out = append(out, e)
		return nil
	}
	for _, p := range ps {
		v := deref(p.val)
		if v.Kind != yaml.MappingNode {
			if err := add(entry{flag: p.key, name: p.key, val: p.val}); err != nil {
				return nil, err
			}
			continue
		}
		if !isSection(p.key) {
			return nil, fmt.Errorf("key %q holds a map, but only these sections do: gpu", p.key)
		}
		sub, err := m.pairs(v)
		if err != nil {
			return nil, err
		}
		for _, sp := range sub {
			if err := add(entry{flag: p.key + "-" + sp.key, name: p.key + "." + sp.key, val: sp.val}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

type pair struct {
	key string
	val *yaml.Node
}

// merger reads a mapping's keys with YAML merge keys (<<: *defaults) applied. It remembers
// each mapping it has read, so that aliases to aliases cost no more than the mapping itself,
// and refuses a mapping that merges itself.
type merger struct {
	done map[*yaml.Node][]pair
	busy map[*yaml.Node]bool
}

func (m *merger) pairs(n *yaml.Node) ([]pair, error) {
	if ps, ok := m.done[n]; ok {
		return ps, nil
	}
	if m.busy[n] {
		return nil, fmt.Errorf("line %d: the map merges itself (<<): remove the loop", n.Line)
	}
	m.busy[n] = true
	defer delete(m.busy, n)
	var own, inherited []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key is %s: keys must be plain names", k.Line, kindName(k))
		}
		if k.ShortTag() == "!!merge" {
			ps, err := m.merged(v)
			if err != nil {
				return nil, err
			}
			inherited = append(inherited, ps...)
			continue
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: key %q is given twice: keep one", k.Line, k.Value)
		}
		seen[k.Value] = true
		own = append(own, pair{key: k.Value, val: v})
	}
	// The map's own keys beat merged ones, and an earlier merge source beats a later one.
	for _, p := range inherited {
		if !seen[p.key] {
			seen[p.key] = true
			own = append(own, p)
		}
	}
	m.done[n] = own
	return own, nil
}

// merged reads a merge key's value: a map, or a list of maps.
func (m *merger) merged(v *yaml.Node) ([]pair, error) {
	v = deref(v)
	srcs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	}
	var out []pair
	for _, s := range srcs {
		s = deref(s)
		if s.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: a merge key (<<) takes a map or a list of maps, not %s", s.Line, kindName(s))
		}
		ps, err := m.pairs(s)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// deref follows an alias (*name) to the node its anchor marks.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 4 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	if n.Kind == yaml.DocumentNode {
		return len(n.Content) == 0 || len(n.Content) == 1 && isNull(n.Content[0])
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("the plain value %q", v)
	default:
		return "not a value"
	}
}

// values turns a YAML value into flag strings, one per list element, each the text exactly as
// written: 0640 stays "0640", 1e3 stays "1e3". Null gives none.
func values(v *yaml.Node) ([]string, error) {
	v = deref(v)
	switch v.Kind {
	case yaml.ScalarNode:
		if isNull(v) {
			return nil, nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			e = deref(e)
			if e.Kind != yaml.ScalarNode || isNull(e) {
				return nil, fmt.Errorf("list elements must be plain values")
			}
			out = append(out, e.Value)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value must be a string, number, boolean or list, not %s", kindName(v))
	}
}
