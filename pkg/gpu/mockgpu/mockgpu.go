// Package mockgpu is a small NVIDIA machine in software for the hidden --gpu-mock mode: eight
// A100-SXM4-40GB GPUs in an NVSwitch full mesh, with readings and an event queue fed by
// InjectXID. Only the NVML calls Outpost makes are implemented (the rest of nvml.Interface is
// embedded as nil), which keeps go-nvml's generated mocks, tens of MB of code, out of the
// binary; unit tests use those mocks instead (pkg/gpu/gputest).
package mockgpu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Machine implements the part of nvml.Interface Outpost uses.
type Machine struct {
	nvml.Interface
	Devices []*Device
	events  chan nvml.EventData
	inits   atomic.Int32 // NVML counts Init and Shutdown; calls between none fail
}

// Device is one mock GPU.
type Device struct {
	nvml.Device
	Index int
	UUID  string
	peers []int
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

// DGXA100 returns the machine.
func DGXA100() *Machine {
	m := &Machine{events: make(chan nvml.EventData, 64)}
	for i := 0; i < 8; i++ {
		d := &Device{Index: i, UUID: fmt.Sprintf("GPU-0a100000-0000-4000-8000-%012d", i)}
		for j := 0; j < 8; j++ {
			if j != i {
				d.peers = append(d.peers, j)
			}
		}
		m.Devices = append(m.Devices, d)
	}
	return m
}

func (m *Machine) Init() nvml.Return { m.inits.Add(1); return nvml.SUCCESS }
func (m *Machine) Shutdown() nvml.Return {
	if m.inits.Add(-1) < 0 {
		m.inits.Store(0)
		return nvml.ERROR_UNINITIALIZED
	}
	return nvml.SUCCESS
}

// up is what the real library checks first: calls outside Init/Shutdown fail.
func (m *Machine) up() bool { return m.inits.Load() > 0 }

func (m *Machine) SystemGetDriverVersion() (string, nvml.Return) {
	if !m.up() {
		return "", nvml.ERROR_UNINITIALIZED
	}
	return "550.54.15", nvml.SUCCESS
}
func (m *Machine) SystemGetCudaDriverVersion() (int, nvml.Return) {
	if !m.up() {
		return 0, nvml.ERROR_UNINITIALIZED
	}
	return 12040, nvml.SUCCESS
}
func (m *Machine) DeviceGetCount() (int, nvml.Return) {
	if !m.up() {
		return 0, nvml.ERROR_UNINITIALIZED
	}
	return len(m.Devices), nvml.SUCCESS
}
func (m *Machine) EventSetCreate() (nvml.EventSet, nvml.Return) {
	if !m.up() {
		return nil, nvml.ERROR_UNINITIALIZED
	}
	return &eventSet{m: m}, nvml.SUCCESS
}
func (m *Machine) DeviceGetHandleByIndex(i int) (nvml.Device, nvml.Return) {
	if !m.up() {
		return nil, nvml.ERROR_UNINITIALIZED
	}
	if i < 0 || i >= len(m.Devices) {
		return nil, nvml.ERROR_INVALID_ARGUMENT
	}
	return m.Devices[i], nvml.SUCCESS
}
func (m *Machine) DeviceGetHandleByUUID(uuid string) (nvml.Device, nvml.Return) {
	if !m.up() {
		return nil, nvml.ERROR_UNINITIALIZED
	}
	for _, d := range m.Devices {
		if d.UUID == uuid {
			return d, nvml.SUCCESS
		}
	}
	return nil, nvml.ERROR_NOT_FOUND
}

func (d *Device) GetUUID() (string, nvml.Return)     { return d.UUID, nvml.SUCCESS }
func (d *Device) GetName() (string, nvml.Return)     { return "NVIDIA A100-SXM4-40GB", nvml.SUCCESS }
func (d *Device) GetMinorNumber() (int, nvml.Return) { return d.Index, nvml.SUCCESS }
func (d *Device) GetIndex() (int, nvml.Return)       { return d.Index, nvml.SUCCESS }
func (d *Device) GetMemoryInfo() (nvml.Memory, nvml.Return) {
	const total = 40960 << 20
	used := uint64(d.Index) << 20
	return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
}
func (d *Device) GetPciInfo() (nvml.PciInfo, nvml.Return) { return PCI(BusID(d.Index)), nvml.SUCCESS }
func (d *Device) GetMigMode() (int, int, nvml.Return) {
	return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_DISABLE, nvml.SUCCESS
}
func (d *Device) GetPersistenceMode() (nvml.EnableState, nvml.Return) {
	return nvml.FEATURE_ENABLED, nvml.SUCCESS
}
func (d *Device) GetUtilizationRates() (nvml.Utilization, nvml.Return) {
	return nvml.Utilization{Gpu: uint32(5 * d.Index), Memory: 1}, nvml.SUCCESS
}
func (d *Device) GetTemperature(nvml.TemperatureSensors) (uint32, nvml.Return) {
	return 35, nvml.SUCCESS
}
func (d *Device) GetPowerUsage() (uint32, nvml.Return)             { return 62000, nvml.SUCCESS }
func (d *Device) RegisterEvents(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
func (d *Device) GetNvLinkState(l int) (nvml.EnableState, nvml.Return) {
	if l >= 12 {
		return 0, nvml.ERROR_INVALID_ARGUMENT
	}
	if l < len(d.peers) {
		return nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	return nvml.FEATURE_DISABLED, nvml.SUCCESS
}
func (d *Device) GetNvLinkRemotePciInfo(l int) (nvml.PciInfo, nvml.Return) {
	if l >= len(d.peers) {
		return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
	}
	return PCI(BusID(d.peers[l])), nvml.SUCCESS
}

type eventSet struct {
	nvml.EventSet
	m *Machine
}

func (s *eventSet) Wait(ms uint32) (nvml.EventData, nvml.Return) {
	select {
	case e := <-s.m.events:
		return e, nvml.SUCCESS
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return nvml.EventData{}, nvml.ERROR_TIMEOUT
	}
}

func (s *eventSet) Free() nvml.Return { return nvml.SUCCESS }

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
