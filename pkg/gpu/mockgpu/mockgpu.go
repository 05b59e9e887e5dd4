// Package mockgpu is a whole NVIDIA machine in software for tests and the hidden --gpu-mock
// mode: go-nvml's DGX A100 model plus what it leaves out (PCI addresses, an NVSwitch full
// mesh, utilization/temperature/power readings, and an event set fed by Inject).
package mockgpu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// Machine is the mock and its event queue.
type Machine struct {
	*dgxa100.Server
	events chan nvml.EventData
}

// BusID is the PCI address of GPU i.
func BusID(i int) string { return fmt.Sprintf("00000000:%02x:00.0", 0x10+i) }

// PCI encodes a bus ID as NVML does.
func PCI(id string) nvml.PciInfo {
	var p nvml.PciInfo
	for i := 0; i < len(id) && i < len(p.BusId)-1; i++ {
		p.BusId[i] = int8(id[i])
	}
	return p
}

// DGXA100 returns eight A100s, all linked to each other.
func DGXA100() *Machine {
	m := &Machine{Server: dgxa100.New(), events: make(chan nvml.EventData, 64)}
	peers := map[int][]int{}
	for i := range m.Devices {
		for j := range m.Devices {
			if i != j {
				peers[i] = append(peers[i], j)
			}
		}
	}
	m.Link(peers)
	for i, d := range m.Devices {
		dev := d.(*dgxa100.Device)
		i := i
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: uint32(5 * i), Memory: 1}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 35, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 62000, nvml.SUCCESS }
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		dev.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	m.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{WaitFunc: func(ms uint32) (nvml.EventData, nvml.Return) {
			select {
			case e := <-m.events:
				return e, nvml.SUCCESS
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		}, FreeFunc: func() nvml.Return { return nvml.SUCCESS }}, nvml.SUCCESS
	}
	return m
}

// Link sets each GPU's PCI address and NVLinks: peers[i] are the GPUs linked to GPU i.
func (m *Machine) Link(peers map[int][]int) {
	for i, d := range m.Devices {
		dev := d.(*dgxa100.Device)
		i := i
		base := dev.GetPciInfoFunc
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			p, r := base()
			p.BusId = PCI(BusID(i)).BusId
			return p, r
		}
		links := peers[i]
		dev.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
			if l >= 12 {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			if l < len(links) {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		dev.GetNvLinkRemotePciInfoFunc = func(l int) (nvml.PciInfo, nvml.Return) {
			if l >= len(links) {
				return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
			}
			return PCI(BusID(links[l])), nvml.SUCCESS
		}
	}
}

// InjectXID queues an XID event for GPU i, as the driver would report it.
func (m *Machine) InjectXID(i int, xid uint64) error {
	if i < 0 || i >= len(m.Devices) {
		return fmt.Errorf("no GPU %d", i)
	}
	m.events <- nvml.EventData{Device: m.Devices[i], EventType: nvml.EventTypeXidCriticalError, EventData: xid}
	return nil
}

// WatchInjectFile feeds events written to path ("xid GPU-INDEX CODE" per line) into the mock,
// so an integration test can play the driver. It polls until ctx ends.
func (m *Machine) WatchInjectFile(ctx context.Context, path string) {
	var offset int64
	for ctx.Err() == nil {
		if f, err := os.Open(path); err == nil {
			if _, err := f.Seek(offset, io.SeekStart); err == nil {
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					offset += int64(len(sc.Bytes())) + 1
					var kind string
					var gpu int
					var code uint64
					if n, _ := fmt.Sscanf(sc.Text(), "%s %d %d", &kind, &gpu, &code); n == 3 && kind == "xid" {
						_ = m.InjectXID(gpu, code)
					}
				}
			}
			f.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
