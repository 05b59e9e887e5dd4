// Package info prints what detection found, as a table or JSON (`outpost gpu info`).
package info

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

// Table writes the node line and one row per GPU, then one per MIG device.
func Table(w io.Writer, n *detect.Node) error {
	fmt.Fprintf(w, "driver %s, CUDA %d.%d, %d GPU(s)\n", n.DriverVersion, n.CUDADriverMajor, n.CUDADriverMinor, len(n.GPUs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tUUID\tPRODUCT\tMEMORY\tPCI\tMIG\tNVLINK PEERS")
	for _, g := range n.GPUs {
		mig := "n/a"
		if g.MIGCapable {
			mig = "disabled"
			if g.MIGEnabled {
				mig = fmt.Sprintf("enabled (%d devices)", len(g.MIG))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d MiB\t%s\t%s\t%d\n", g.Index, g.UUID, g.Product, g.MemoryMiB, g.PCIBusID, mig, len(g.NVLinkPeers))
		for _, m := range g.MIG {
			fmt.Fprintf(tw, "  %d/%d/%d\t%s\t%s\t%d MiB\t\t\t\n", g.Index, m.GPUInstanceID, m.ComputeInstanceID, m.ID, "MIG "+m.Profile, m.MemoryMiB)
		}
	}
	return tw.Flush()
}

// JSON writes the node as indented JSON.
func JSON(w io.Writer, n *detect.Node) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(n)
}

// Summary is one line for logs.
func Summary(n *detect.Node) string {
	var p []string
	for _, g := range n.GPUs {
		p = append(p, g.Product)
	}
	return strings.Join(p, ", ")
}
