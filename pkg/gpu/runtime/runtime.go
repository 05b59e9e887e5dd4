// Package runtime finds the NVIDIA container runtimes on a host and names the containerd
// runtime handlers and Node labels Outpost makes for them.
package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Runtime is one containerd runtime handler backed by an NVIDIA runtime binary.
type Runtime struct {
	Name string // handler and RuntimeClass name
	Path string // binary, as seen from the host
}

// binaries maps each runtime binary to its handler name.
var binaries = []struct{ bin, name string }{
	{"nvidia-container-runtime", "nvidia"},
	{"nvidia-container-runtime.cdi", "nvidia-cdi"},
	{"nvidia-container-runtime.experimental", "nvidia-experimental"},
}

// Dirs searched after PATH, as the NVIDIA toolkit installs there.
var extraDirs = []string{"/usr/local/nvidia/toolkit", "/usr/bin"}

// Find returns the runtimes present under root, searching pathEnv's dirs and then the
// toolkit's usual places; the first hit per binary wins.
func Find(root, pathEnv string) []Runtime {
	dirs := append(filepath.SplitList(pathEnv), extraDirs...)
	var out []Runtime
	for _, b := range binaries {
		for _, d := range dirs {
			if d == "" {
				continue
			}
			p := filepath.Join(d, b.bin)
			fi, err := os.Stat(filepath.Join(root, p))
			if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				out = append(out, Runtime{Name: b.name, Path: p})
				break
			}
		}
	}
	return out
}

// Names lists the handler names Outpost may create.
func Names() []string {
	n := make([]string, len(binaries))
	for i, b := range binaries {
		n[i] = b.name
	}
	return n
}

// Default checks a requested default runtime: "" or "runc" always works; an NVIDIA one must
// have been found.
func Default(requested string, found []Runtime) error {
	if requested == "" || requested == "runc" {
		return nil
	}
	known := false
	for _, n := range Names() {
		known = known || n == requested
	}
	if !known {
		return fmt.Errorf("--default-runtime %q is not one of runc, %s", requested, strings.Join(Names(), ", "))
	}
	for _, r := range found {
		if r.Name == requested {
			return nil
		}
	}
	return fmt.Errorf("--default-runtime %s: its binary was not found on PATH, in /usr/local/nvidia/toolkit or /usr/bin: install the NVIDIA container toolkit, or drop --default-runtime", requested)
}

// LabelPrefix starts the Node label the GPU layer sets for each runtime the node has; the
// servers' RuntimeClass controller creates a RuntimeClass for every runtime some Node carries,
// scheduling its pods onto the nodes with the label.
const LabelPrefix = "runtime.outpost.io/"

// Label is the Node label that says the node has runtime name ("true").
func Label(name string) string { return LabelPrefix + name }
