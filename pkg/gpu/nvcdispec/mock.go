package nvcdispec

import (
	"fmt"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// Mock is a plain-Go mock machine (the hidden --gpu-mock) whose CDI spec comes from NVIDIA's
// generator: the helper serves it so the mock's pods get what a real node's pods get.
type Mock struct{ gpulib.Lib }

// CDISpec generates the spec over go-nvml's DGX A100 model, set to the mock's GPUs. Each MIG
// device gets its parent's device node under its Outpost name: the MIG capability nodes NVIDIA's
// generator adds come from the driver's /proc/driver/nvidia-caps, which no mock has.
func (m Mock) CDISpec(o gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	n, err := m.Detect()
	if err != nil {
		return nil, err
	}
	o.NoSandboxUtils = true
	raw, warnings, err := generate(MockNVML(n), o)
	if err != nil {
		return nil, err
	}
	for _, g := range n.GPUs {
		node := specs.DeviceNode{Path: fmt.Sprintf("/dev/nvidia%d", g.Minor), HostPath: filepath.Join(o.DevRoot, "dev", fmt.Sprintf("nvidia%d", g.Minor))}
		for _, d := range g.MIG {
			raw.Devices = append(raw.Devices, specs.Device{Name: fmt.Sprintf("%d:%d", g.Index, d.GPUInstanceID),
				ContainerEdits: specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{&node}}})
		}
	}
	addToAll(raw)
	return finish(raw, warnings)
}

// addToAll puts every device's nodes in "all" (made when every GPU is in MIG mode, where the
// generator has no whole GPU to merge; finish drops it again when it stays empty).
func addToAll(raw *specs.Spec) {
	var all *specs.Device
	for i := range raw.Devices {
		if raw.Devices[i].Name == "all" {
			all = &raw.Devices[i]
		}
	}
	if all == nil {
		raw.Devices = append(raw.Devices, specs.Device{Name: "all"})
		all = &raw.Devices[len(raw.Devices)-1]
	}
	have := map[string]bool{}
	for _, n := range all.ContainerEdits.DeviceNodes {
		have[n.Path] = true
	}
	for _, d := range raw.Devices {
		for _, n := range d.ContainerEdits.DeviceNodes {
			if !have[n.Path] {
				have[n.Path] = true
				all.ContainerEdits.DeviceNodes = append(all.ContainerEdits.DeviceNodes, n)
			}
		}
	}
}

// MockNVML is go-nvml's DGX A100 model with the identities (UUIDs, minors, PCI addresses) and
// MIG modes of n's GPUs, for as many GPUs as n has (at most eight).
func MockNVML(n *detect.Node) nvml.Interface {
	srv := dgxa100.New()
	if len(n.GPUs) < len(srv.Devices) {
		srv.Devices = srv.Devices[:len(n.GPUs)]
	}
	srv.DriverVersion = n.DriverVersion
	for i, dev := range srv.Devices {
		d := dev.(*server.Device)
		g := n.GPUs[i]
		d.UUID, d.Minor, d.Index = g.UUID, g.Minor, g.Index
		d.PciBusID = g.PCIBusID
		d.MigMode = nvml.DEVICE_MIG_DISABLE
		if g.MIGEnabled {
			d.MigMode = nvml.DEVICE_MIG_ENABLE
		}
		// The MIG devices' own edits need the driver's /proc/driver/nvidia-caps, which no mock
		// has: CDISpec adds them. NVML shows seven free slots, as with MIG off.
		d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
		d.GetMigDeviceHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
		d.IsMigDeviceHandleFunc = func() (bool, nvml.Return) { return false, nvml.SUCCESS }
	}
	return srv
}
