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
	ComputeMajor int         `json:"computeMajor,omitempty"`
	ComputeMinor int         `json:"computeMinor,omitempty"`
	PCIBusID     string      `json:"pciBusID"`
	MIGCapable   bool        `json:"migCapable"`
	MIGEnabled   bool        `json:"migEnabled"`
	MIG          []MIGDevice `json:"migDevices,omitempty"`
	NVLinkPeers  []string    `json:"nvlinkPeers,omitempty"` // PCI bus IDs of GPUs linked by NVLink
}

// MIGDevice is one MIG partition (a compute instance inside a GPU instance).
type MIGDevice struct {
	ID                string `json:"id"` // MIG-<gpu-uuid>/<gi>/<ci>, accepted by NVIDIA_VISIBLE_DEVICES
	Profile           string `json:"profile"`
	GPUInstanceID     int    `json:"gpuInstanceID"`
	ComputeInstanceID int    `json:"computeInstanceID"`
	MemoryMiB         uint64 `json:"memoryMiB"`
}
