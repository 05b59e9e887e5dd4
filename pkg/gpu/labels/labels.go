// Package labels computes the Node labels that describe a node's GPUs, with the names NVIDIA's
// GPU feature discovery uses, so existing node selectors keep working.
package labels

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
)

// For returns the labels; a node without GPUs gets none.
func For(n *detect.Node, c resources.Config) map[string]string {
	if n == nil || len(n.GPUs) == 0 {
		return map[string]string{}
	}
	g := n.GPUs[0]
	capable := false
	for _, x := range n.GPUs {
		capable = capable || x.MIGCapable
	}
	strategy := c.Strategy
	if strategy == "" {
		strategy = resources.None
	}
	l := map[string]string{
		"nvidia.com/gpu.present":          "true",
		"nvidia.com/gpu.product":          Value(g.Product),
		"nvidia.com/gpu.count":            strconv.Itoa(len(n.GPUs)),
		"nvidia.com/gpu.memory":           strconv.FormatUint(g.MemoryMiB, 10),
		"nvidia.com/mig.capable":          strconv.FormatBool(capable),
		"nvidia.com/mig.strategy":         string(strategy),
		"nvidia.com/gpu.replicas":         strconv.Itoa(replicas(c, resources.GPUResource)),
		"nvidia.com/gpu.sharing-strategy": "none",
		"nvidia.com/cuda.runtime.major":   strconv.Itoa(n.CUDADriverMajor),
		"nvidia.com/cuda.runtime.minor":   strconv.Itoa(n.CUDADriverMinor),
	}
	// As GPU feature discovery: cuda.driver.* is the driver's own version, e.g. 550.54.15.
	parts := strings.SplitN(n.DriverVersion, ".", 3)
	if len(parts) >= 2 {
		l["nvidia.com/cuda.driver.major"] = parts[0]
		l["nvidia.com/cuda.driver.minor"] = parts[1]
	}
	if len(parts) == 3 {
		l["nvidia.com/cuda.driver.rev"] = parts[2]
	}
	if g.ComputeMajor > 0 {
		l["nvidia.com/gpu.family"] = Family(g.ComputeMajor, g.ComputeMinor)
		l["nvidia.com/gpu.compute.major"] = strconv.Itoa(g.ComputeMajor)
		l["nvidia.com/gpu.compute.minor"] = strconv.Itoa(g.ComputeMinor)
	}
	if m := Value(n.Machine); m != "" {
		l["nvidia.com/gpu.machine"] = m
	}
	if replicas(c, resources.GPUResource) > 1 {
		l["nvidia.com/gpu.sharing-strategy"] = "time-slicing"
	}
	migLabels(l, n, strategy, c)
	return l
}

// replicas is how many times the resource's devices are advertised.
func replicas(c resources.Config, name string) int {
	if r, _ := c.Sharing.For(name); r > 0 {
		return r
	}
	return max(c.Replicas, 1)
}

// migLabels describes the MIG devices as GPU feature discovery does: with the single strategy
// the gpu.* labels describe the MIG device pods get; with mixed, each profile has its own
// nvidia.com/mig-<profile>.* labels.
func migLabels(l map[string]string, n *detect.Node, strategy resources.Strategy, c resources.Config) {
	type profile struct {
		count   int
		memory  uint64
		product string
	}
	byProfile := map[string]*profile{}
	total := 0
	for _, g := range n.GPUs {
		if !g.MIGEnabled {
			continue
		}
		for _, m := range g.MIG {
			p := byProfile[m.Profile]
			if p == nil {
				p = &profile{memory: m.MemoryMiB, product: Value(g.Product + "-MIG-" + m.Profile)}
				byProfile[m.Profile] = p
			}
			p.count++
			total++
		}
	}
	switch strategy {
	case resources.Single:
		if len(byProfile) != 1 {
			return // the device plugin refuses this layout; the whole-GPU labels stay
		}
		for _, p := range byProfile {
			l["nvidia.com/gpu.count"] = strconv.Itoa(total)
			l["nvidia.com/gpu.memory"] = strconv.FormatUint(p.memory, 10)
			l["nvidia.com/gpu.product"] = p.product
		}
	case resources.Mixed:
		for name, p := range byProfile {
			k := "nvidia.com/mig-" + name
			l[k+".count"] = strconv.Itoa(p.count)
			l[k+".memory"] = strconv.FormatUint(p.memory, 10)
			l[k+".product"] = p.product
			l[k+".replicas"] = strconv.Itoa(replicas(c, "nvidia.com/mig-"+name))
		}
	}
}

// Family is the GPU architecture for a CUDA compute capability, named as GPU feature
// discovery names it.
func Family(major, minor int) string {
	switch major {
	case 1:
		return "tesla"
	case 2:
		return "fermi"
	case 3:
		return "kepler"
	case 5:
		return "maxwell"
	case 6:
		return "pascal"
	case 7:
		if minor < 5 {
			return "volta"
		}
		return "turing"
	case 8:
		if minor < 9 {
			return "ampere"
		}
		return "ada-lovelace"
	case 9:
		return "hopper"
	case 10, 12:
		return "blackwell"
	}
	return "undefined"
}

// Runtimes returns a label per NVIDIA runtime the node has: the servers create a RuntimeClass
// for each runtime some Node carries, with a node selector on its label.
func Runtimes(rs []gpuruntime.Runtime) map[string]string {
	l := map[string]string{}
	for _, r := range rs {
		l[gpuruntime.Label(r.Name)] = "true"
	}
	return l
}

// Value makes s a valid label value: letters, digits, '-', '_', '.'; at most 63 characters,
// starting and ending alphanumeric.
func Value(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	v := string(b)
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "-_.")
}

// Patch returns the label changes to apply to a node that has current labels: new or changed
// values, and nil for Outpost GPU labels that no longer apply (a JSON merge patch deletes them).
func Patch(current, want map[string]string) map[string]*string {
	p := map[string]*string{}
	for k, v := range want {
		if cur, ok := current[k]; !ok || cur != v {
			v := v
			p[k] = &v
		}
	}
	for k := range current {
		if _, ok := want[k]; !ok && owned(k) {
			p[k] = nil
		}
	}
	return p
}

// owned reports whether the GPU layer keeps label k. The MIG layout a node should have is
// under its prefixes but the user's (the layer owns its state label, nvidia.com/mig.config.state).
func owned(k string) bool {
	if k == mig.ConfigLabel {
		return false
	}
	for _, p := range []string{"nvidia.com/gpu.", "nvidia.com/mig.", "nvidia.com/mig-", "nvidia.com/cuda.", gpuruntime.LabelPrefix} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// String formats labels for logs.
func String(l map[string]string) string { return fmt.Sprint(l) }
