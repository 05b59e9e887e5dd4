// Package labels computes the Node labels that describe a node's GPUs, with the names NVIDIA's
// GPU feature discovery uses, so existing node selectors keep working.
package labels

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// Prefix of every label Outpost owns; stale ones are removed by comparing against it.
const Prefix = "nvidia.com/"

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
		"nvidia.com/gpu.present":        "true",
		"nvidia.com/gpu.product":        Value(g.Product),
		"nvidia.com/gpu.count":          strconv.Itoa(len(n.GPUs)),
		"nvidia.com/gpu.memory":         strconv.FormatUint(g.MemoryMiB, 10),
		"nvidia.com/mig.capable":        strconv.FormatBool(capable),
		"nvidia.com/mig.strategy":       string(strategy),
		"nvidia.com/gpu.replicas":       strconv.Itoa(max(c.Replicas, 1)),
		"nvidia.com/cuda.runtime.major": strconv.Itoa(n.CUDADriverMajor),
		"nvidia.com/cuda.runtime.minor": strconv.Itoa(n.CUDADriverMinor),
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

func owned(k string) bool {
	for _, p := range []string{"nvidia.com/gpu.", "nvidia.com/mig.", "nvidia.com/cuda."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// String formats labels for logs.
func String(l map[string]string) string { return fmt.Sprint(l) }
