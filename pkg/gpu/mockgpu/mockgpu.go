// Package mockgpu is a small NVIDIA machine in software for the hidden --gpu-mock mode: eight
// A100-SXM4-40GB GPUs in an NVSwitch full mesh, with readings, an event queue fed by
// InjectXID, and MIG layouts (the A100's profiles and placements). It implements gpulib.Lib in plain Go, so the mock runs wherever the outpost binary
// runs (arm64 under qemu too) and in the GPU helper; the NVML calls behind gpulib.Lib are
// tested against go-nvml's own mocks (pkg/gpu/nvmllib).
package mockgpu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
)

// Product is what the mock GPUs call themselves.
const Product = "NVIDIA A100-SXM4-40GB"

const memMiB = 40960

// errUninitialized is what the real library answers between Shutdown and the next Init.
var errUninitialized = errors.New("nvml: Uninitialized")

// Machine is the mock: gpulib.Lib for a DGX A100.
type Machine struct {
	GPUs int
	// StateFile keeps the MIG layout across processes; "" keeps it in memory.
	StateFile string
	// InjectFile is where tests write driver events and validation failures (see
	// WatchInjectFile and Validate); "" injects nothing.
	InjectFile string
	migMu      sync.Mutex
	mig        migState

	born   time.Time // energy counts from here, at the mock's 62 W
	events chan health.Event
	opens  atomic.Int32 // NVML counts Init and Shutdown; calls between none fail
}

var _ gpulib.Lib = (*Machine)(nil)

// BusID is the PCI address of GPU i.
func BusID(i int) string { return fmt.Sprintf("00000000:%02x:00.0", 0x10+i) }

// UUID is GPU i's UUID.
func UUID(i int) string { return fmt.Sprintf("GPU-0a100000-0000-4000-8000-%012d", i) }

// DGXA100 returns the machine.
func DGXA100() *Machine {
	return &Machine{GPUs: 8, born: time.Now(), events: make(chan health.Event, 64)}
}

// Detect returns the eight GPUs, each linked to the seven others, in their MIG layout.
func (m *Machine) Detect() (*detect.Node, error) {
	st, err := m.loadMIG()
	if err != nil {
		return nil, err
	}
	n := &detect.Node{DriverVersion: "550.54.15", CUDADriverMajor: 12, CUDADriverMinor: 4}
	for i := 0; i < m.GPUs; i++ {
		g := detect.GPU{Index: i, Minor: i, UUID: UUID(i), Product: Product, MemoryMiB: memMiB,
			ComputeMajor: 8, ComputeMinor: 0, PCIBusID: BusID(i), MIGCapable: true, MIGProfiles: Profiles(),
			MIGEnabled: st[i].Enabled, MIG: migDevices(i, st[i])}
		for j := 0; j < m.GPUs; j++ {
			if j != i {
				g.NVLinkPeers = append(g.NVLinkPeers, BusID(j))
			}
		}
		n.GPUs = append(n.GPUs, g)
	}
	return n, nil
}

// Preflight: persistence on, MIG as laid out, nothing pending.
func (m *Machine) Preflight() (*gpulib.Preflight, error) {
	st, err := m.loadMIG()
	if err != nil {
		return nil, err
	}
	p := &gpulib.Preflight{DriverVersion: "550.54.15"}
	for i := 0; i < m.GPUs; i++ {
		p.GPUs = append(p.GPUs, gpulib.PreflightGPU{Index: i, Persistence: gpulib.Bool(true), MIGEnabled: gpulib.Bool(st[i].Enabled)})
	}
	return p, nil
}

func (m *Machine) Open() error { m.opens.Add(1); return nil }

func (m *Machine) Close() error {
	if m.opens.Add(-1) < 0 {
		m.opens.Store(0)
		return errUninitialized
	}
	return nil
}

// up is what the real library checks first: calls outside Open/Close fail.
func (m *Machine) up() bool { return m.opens.Load() > 0 }

// Readings: GPU i is 5·i % busy and uses i MiB; its MIG device on GPU instance g uses g MiB.
func (m *Machine) Readings() ([]gpulib.Reading, error) {
	if !m.up() {
		return nil, errUninitialized
	}
	st, err := m.loadMIG()
	if err != nil {
		return nil, err
	}
	var out []gpulib.Reading
	for i := 0; i < m.GPUs; i++ {
		out = append(out, gpulib.Reading{Index: i, UUID: UUID(i), Name: Product, Minor: i,
			UtilPercent: gpulib.Float(float64(5 * i)), FBUsedMiB: gpulib.Float(float64(i)),
			FBFreeMiB: gpulib.Float(float64(memMiB - i)), FBTotalMiB: gpulib.Float(memMiB),
			TempC: gpulib.Float(35), PowerW: gpulib.Float(62), SMClockMHz: gpulib.Float(1410), MemClockMHz: gpulib.Float(1215),
			EnergyMJ: gpulib.Float(float64(62000 * time.Since(m.born).Seconds())), PCIeReplays: gpulib.Float(0),
			ECCSingleBit: gpulib.Float(0), ECCDoubleBit: gpulib.Float(0), MIG: migReadings(i, st[i]),
			MemCopyUtilPercent: gpulib.Float(float64(i)), EncUtilPercent: gpulib.Float(0), DecUtilPercent: gpulib.Float(0),
			MemTempC: gpulib.Float(40), PowerLimitW: gpulib.Float(400), PCIeTxBytesPerSec: gpulib.Float(1 << 20), PCIeRxBytesPerSec: gpulib.Float(2 << 20),
			NVLinkBytes: gpulib.Float(float64(i) * (1 << 30)), ClocksEventReasons: gpulib.Float(1), // GPU idle
			ECCSingleBitAgg: gpulib.Float(0), ECCDoubleBitAgg: gpulib.Float(0), RemappedCorrectable: gpulib.Float(0),
			RemappedUncorrectable: gpulib.Float(0), RowRemapFailure: gpulib.Float(0)})
		// An A100 has no GPU performance monitoring (Hopper and later): no activity ratios.
	}
	return out, nil
}

// Probe: every mock GPU answers while NVML is up.
func (m *Machine) Probe(uuid string) bool {
	for i := 0; i < m.GPUs; i++ {
		if UUID(i) == uuid {
			return m.up()
		}
	}
	return false
}

// NextEvent returns an injected event, or times out.
func (m *Machine) NextEvent(timeout time.Duration) (health.Event, bool, error) {
	if !m.up() {
		return health.Event{}, false, errUninitialized
	}
	select {
	case e := <-m.events:
		return e, true, nil
	case <-time.After(timeout):
		return health.Event{}, false, nil
	}
}

// InjectXID queues an XID event for GPU i, as the driver would report it.
func (m *Machine) InjectXID(i int, xid uint64) error {
	if i < 0 || i >= m.GPUs {
		return fmt.Errorf("no GPU %d", i)
	}
	m.events <- health.Event{UUID: UUID(i), Kind: "xid", XID: xid}
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

// CDISpec names the machine's devices with their device nodes only: the in-process mock's
// stand-in for the layer's tests. The helper serves the mock with NVIDIA's own generator
// (pkg/gpu/nvcdispec), which a plain-Go binary cannot link.
func (m *Machine) CDISpec(o gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	n, err := m.Detect()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices:\n")
	dev := func(name string, minor int) {
		fmt.Fprintf(&b, "- name: %q\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia%d\n      hostPath: %s/dev/nvidia%d\n", name, minor, o.DevRoot, minor)
	}
	for _, g := range n.GPUs {
		if !g.MIGEnabled {
			dev(fmt.Sprint(g.Index), g.Minor)
		}
		for _, d := range g.MIG {
			dev(fmt.Sprintf("%d:%d", g.Index, d.GPUInstanceID), g.Minor)
		}
	}
	b.WriteString("containerEdits: {}\n")
	return &gpulib.CDISpec{YAML: []byte(b.String())}, nil
}

// Validate passes every device but those of GPUs the inject file fails: "fail-validation N"
// fails GPU N (and its MIG devices) from then on, "pass-validation N" lets it pass again. The
// file is read whole at each call, so every helper process sees the same story.
func (m *Machine) Validate(ids []string) ([]gpulib.Validation, error) {
	failing := map[string]bool{}
	if b, err := os.ReadFile(m.InjectFile); m.InjectFile != "" && err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kind string
			var gpu int
			if n, _ := fmt.Sscanf(line, "%s %d", &kind, &gpu); n == 2 && gpu >= 0 && gpu < m.GPUs {
				switch kind {
				case "fail-validation":
					failing[UUID(gpu)] = true
				case "pass-validation":
					delete(failing, UUID(gpu))
				}
			}
		}
	}
	out := make([]gpulib.Validation, 0, len(ids))
	for _, id := range ids {
		v := gpulib.Validation{ID: id, OK: true, Millis: 1}
		if failing[gpulib.GPUOf(id)] {
			v.OK, v.Reason = false, "run the kernel: CUDA_ERROR_ECC_UNCORRECTABLE (injected)"
		}
		out = append(out, v)
	}
	return out, nil
}
