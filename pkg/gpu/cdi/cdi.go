// Package cdi is the outpost side of the node's Container Device Interface spec: the GPU
// helper generates it with NVIDIA's generator (pkg/gpu/nvcdispec, through gpulib.Lib.CDISpec),
// this package checks before a start that each GPU's device node exists and writes the spec
// where containerd reads it. containerd applies the edits for the CDI names the device plugin
// returns, so GPU containers work with or without the NVIDIA container toolkit.
package cdi

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Kind is the CDI vendor/class of every device in the spec.
const Kind = "nvidia.com/gpu"

// FileName is the spec's name in the CDI dir.
const FileName = "nvidia.yaml"

// CheckDeviceNodes fails when a GPU's /dev/nvidiaN is missing under devRoot: the driver is
// installed but not loaded, and a container given the GPU could not open it.
func CheckDeviceNodes(n *detect.Node, devRoot string) error {
	for _, g := range n.GPUs {
		p := filepath.Join(devRoot, "dev", fmt.Sprintf("nvidia%d", g.Minor))
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("GPU %d: device node %s is missing: is the driver loaded (nvidia-modprobe)?", g.Index, p)
		}
	}
	return nil
}

// Write stores the spec as dir/nvidia.yaml, atomically.
func Write(spec []byte, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("CDI spec dir: %w", err)
	}
	p := filepath.Join(dir, FileName)
	return p, pki.WriteFile(p, spec, 0o644)
}

// Remove deletes dir/nvidia.yaml, if there is one.
func Remove(dir string) error {
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("CDI spec: %w", err)
	}
	return nil
}
