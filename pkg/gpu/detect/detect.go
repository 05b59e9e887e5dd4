// Package detect holds what GPU detection finds on a node, as plain data: the GPU helper
// reads it through NVML (pkg/gpu/nvmllib) and sends it across; everything else consumes it.
package detect

import "errors"

// ErrNoDriver means no usable NVIDIA driver: not an error for a node, just no GPU features.
var ErrNoDriver = errors.New("no NVIDIA driver (libnvidia-ml.so.1 not found or not loadable)")

// Node is what one machine has.
type Node struct {
	DriverVersion   string `json:"driverVersion"`
	CUDADriverMajor int    `json:"cudaDriverMajor"`
	CUDADriverMinor int    `json:"cudaDriverMinor"`
	GPUs            []GPU  `json:"gpus"`
	// Machine is the host's model (DMI product name), read by the agent, not NVML.
	Machine string `json:"machine,omitempty"`
}

// GPU is one physical GPU.
type GPU struct {
	Index     int    `json:"index"`
	Minor     int    `json:"minor"` // /dev/nvidiaN
	UUID      string `json:"uuid"`
	Product   string `json:"product"`
	MemoryMiB uint64 `json:"memoryMiB"`
	// ComputeMajor and ComputeMinor are the CUDA compute capability (8.0 for an A100); 0 when
	// NVML does not say.
	ComputeMajor int    `json:"computeMajor,omitempty"`
	ComputeMinor int    `json:"computeMinor,omitempty"`
	PCIBusID     string `json:"pciBusID"`
	MIGCapable   bool   `json:"migCapable"`
	MIGEnabled   bool   `json:"migEnabled"`
	// MIGPending is a MIG mode change that waits for a GPU reset or a reboot.
	MIGPending bool        `json:"migPending,omitempty"`
	MIG        []MIGDevice `json:"migDevices,omitempty"`
	// MIGProfiles are the GPU instance profiles the GPU offers; empty where NVML does not say
	// (MIG off on some drivers).
	MIGProfiles []MIGProfile `json:"migProfiles,omitempty"`
	NVLinkPeers []string     `json:"nvlinkPeers,omitempty"` // PCI bus IDs of GPUs linked by NVLink
}

// MIGDevice is one MIG partition (a compute instance inside a GPU instance).
type MIGDevice struct {
	ID                string `json:"id"` // MIG-<gpu-uuid>/<gi>/<ci>, accepted by NVIDIA_VISIBLE_DEVICES
	Profile           string `json:"profile"`
	GPUInstanceID     int    `json:"gpuInstanceID"`
	ComputeInstanceID int    `json:"computeInstanceID"`
	MemoryMiB         uint64 `json:"memoryMiB"`
}

// MIGProfile is a GPU instance profile a GPU offers.
type MIGProfile struct {
	ID        int    `json:"id"`   // NVML's GPU instance profile ID
	Name      string `json:"name"` // NVIDIA's name: 1g.5gb, 1g.5gb+me, 7g.40gb
	Slices    int    `json:"slices"`
	Max       int    `json:"max"` // instances of it an empty GPU holds
	MemoryMiB uint64 `json:"memoryMiB"`
	// Placements are where an instance of it may start, in memory slices.
	Placements []Placement `json:"placements,omitempty"`
}

// Placement is a run of a GPU's memory slices.
type Placement struct {
	Start int `json:"start"`
	Size  int `json:"size"`
}
