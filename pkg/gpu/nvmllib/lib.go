// Package nvmllib implements gpulib.Lib on go-nvml: GPU detection, live readings, XID and ECC
// events, check-config's driver state. It is linked only into the GPU helper (cmd/outpost-gpu)
// and tests, which drive it with go-nvml's mocks (the DGX A100 model among them).
package nvmllib

import (
	"fmt"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/nvcdispec"
)

// Lib is gpulib.Lib over an nvml.Interface: the real library or a mock.
type Lib struct {
	nvml nvml.Interface
	// Check validates the one device CUDA is given by its UUID (see Validate); the GPU helper
	// runs it in a child process of its own per device.
	Check func(cudaID string) gpulib.Validation

	mu     sync.Mutex
	events *events // registered on the first NextEvent after Open
	evErr  error
	// gpmLast is each GPU's last performance monitoring sample, by index: activity is the
	// difference between two.
	gpmLast map[int]nvml.GpmSample
}

var _ gpulib.Lib = (*Lib)(nil)

// New wraps lib.
func New(lib nvml.Interface) *Lib { return &Lib{nvml: lib} }

// CDISpec generates the node's CDI spec with NVIDIA's generator (pkg/gpu/nvcdispec).
func (l *Lib) CDISpec(o gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	return nvcdispec.Generate(l.nvml, o)
}

// Detect reads the node's GPUs.
func (l *Lib) Detect() (*detect.Node, error) { return Detect(l.nvml) }

// Open initializes NVML until Close: NVML counts Init and Shutdown, and without an Init that
// outlives Detect every call answers ERROR_UNINITIALIZED (seen on a real H100).
func (l *Lib) Open() error {
	if r := l.nvml.Init(); r != nvml.SUCCESS {
		return fail("init", r)
	}
	return nil
}

// Close shuts NVML down again.
func (l *Lib) Close() error {
	l.mu.Lock()
	if l.events != nil {
		l.events.set.Free()
		l.events = nil
	}
	l.freeGPM()
	l.mu.Unlock()
	if r := l.nvml.Shutdown(); r != nvml.SUCCESS {
		return fail("shutdown", r)
	}
	return nil
}

// Readings reads every GPU's utilization, memory, temperature, power, clocks, energy, PCIe
// replays and ECC counts.
func (l *Lib) Readings() ([]gpulib.Reading, error) {
	n, r := l.nvml.DeviceGetCount()
	if r != nvml.SUCCESS {
		return nil, fail("device count", r)
	}
	var out []gpulib.Reading
	for i := 0; i < n; i++ {
		dev, r := l.nvml.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue
		}
		g := gpulib.Reading{Index: i}
		g.UUID, _ = dev.GetUUID()
		g.Name, _ = dev.GetName()
		g.Minor, _ = dev.GetMinorNumber()
		if u, r := dev.GetUtilizationRates(); r == nvml.SUCCESS {
			g.UtilPercent, g.MemCopyUtilPercent = gpulib.Float(float64(u.Gpu)), gpulib.Float(float64(u.Memory))
		}
		if m, r := dev.GetMemoryInfo(); r == nvml.SUCCESS {
			g.FBUsedMiB, g.FBFreeMiB, g.FBTotalMiB = gpulib.Float(float64(m.Used>>20)), gpulib.Float(float64(m.Free>>20)), gpulib.Float(float64(m.Total>>20))
		}
		if t, r := dev.GetTemperature(nvml.TEMPERATURE_GPU); r == nvml.SUCCESS {
			g.TempC = gpulib.Float(float64(t))
		}
		if p, r := dev.GetPowerUsage(); r == nvml.SUCCESS {
			g.PowerW = gpulib.Float(float64(p) / 1000)
		}
		if c, r := dev.GetClockInfo(nvml.CLOCK_SM); r == nvml.SUCCESS {
			g.SMClockMHz = gpulib.Float(float64(c))
		}
		if c, r := dev.GetClockInfo(nvml.CLOCK_MEM); r == nvml.SUCCESS {
			g.MemClockMHz = gpulib.Float(float64(c))
		}
		if e, r := dev.GetTotalEnergyConsumption(); r == nvml.SUCCESS {
			g.EnergyMJ = gpulib.Float(float64(e))
		}
		if n, r := dev.GetPcieReplayCounter(); r == nvml.SUCCESS {
			g.PCIeReplays = gpulib.Float(float64(n))
		}
		// ECC counts exist only where ECC is on (datacenter GPUs): NOT_SUPPORTED elsewhere.
		if n, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC); r == nvml.SUCCESS {
			g.ECCSingleBit = gpulib.Float(float64(n))
		}
		if n, r := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); r == nvml.SUCCESS {
			g.ECCDoubleBit = gpulib.Float(float64(n))
		}
		more(dev, &g)
		l.gpm(i, dev, &g)
		g.MIG = migReadings(dev, g.UUID)
		out = append(out, g)
	}
	return out, nil
}

// migReadings are the memory values of dev's MIG devices, named by GPU and compute instance
// as the device plugin names them; none while MIG is off.
func migReadings(dev nvml.Device, uuid string) []gpulib.MIGReading {
	if cur, _, r := dev.GetMigMode(); r != nvml.SUCCESS || cur != nvml.DEVICE_MIG_ENABLE {
		return nil
	}
	mem, r := dev.GetMemoryInfo()
	if r != nvml.SUCCESS {
		return nil
	}
	devs, err := migDevices(dev, uuid, mem.Total>>20)
	if err != nil {
		return nil
	}
	n, r := dev.GetMaxMigDeviceCount()
	if r != nvml.SUCCESS {
		return nil
	}
	var out []gpulib.MIGReading
	for i := 0; i < n; i++ {
		h, r := dev.GetMigDeviceHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue // an unused slot
		}
		gi, r1 := h.GetGpuInstanceId()
		ci, r2 := h.GetComputeInstanceId()
		if r1 != nvml.SUCCESS || r2 != nvml.SUCCESS {
			continue
		}
		m := gpulib.MIGReading{ID: fmt.Sprintf("MIG-%s/%d/%d", uuid, gi, ci), GPUInstanceID: gi, ComputeInstanceID: ci}
		for _, d := range devs {
			if d.GPUInstanceID == gi && d.ComputeInstanceID == ci {
				m.Profile = d.Profile
			}
		}
		if mi, r := h.GetMemoryInfo(); r == nvml.SUCCESS {
			m.FBUsedMiB, m.FBFreeMiB, m.FBTotalMiB = gpulib.Float(float64(mi.Used>>20)), gpulib.Float(float64(mi.Free>>20)), gpulib.Float(float64(mi.Total>>20))
		}
		out = append(out, m)
	}
	return out
}

// Probe asks NVML whether the GPU answers.
func (l *Lib) Probe(uuid string) bool {
	dev, r := l.nvml.DeviceGetHandleByUUID(uuid)
	if r != nvml.SUCCESS {
		return false
	}
	_, r = dev.GetMemoryInfo()
	return r == nvml.SUCCESS
}

// NextEvent registers for events on the first call, then waits for one.
func (l *Lib) NextEvent(timeout time.Duration) (health.Event, bool, error) {
	l.mu.Lock()
	if l.events == nil && l.evErr == nil {
		l.events, l.evErr = watch(l.nvml)
	}
	ev, err := l.events, l.evErr
	l.mu.Unlock()
	if err != nil {
		return health.Event{}, false, fmt.Errorf("%w: %w", gpulib.ErrNoEvents, err)
	}
	return ev.next(timeout)
}

// Preflight reads the driver version and each GPU's persistence and MIG modes.
func (l *Lib) Preflight() (*gpulib.Preflight, error) {
	if r := l.nvml.Init(); r != nvml.SUCCESS {
		return nil, fail("init", r)
	}
	defer l.nvml.Shutdown()
	p := &gpulib.Preflight{}
	p.DriverVersion, _ = l.nvml.SystemGetDriverVersion()
	n, _ := l.nvml.DeviceGetCount()
	for i := 0; i < n; i++ {
		d, r := l.nvml.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue
		}
		g := gpulib.PreflightGPU{Index: i}
		if m, r := d.GetPersistenceMode(); r == nvml.SUCCESS {
			g.Persistence = gpulib.Bool(m == nvml.FEATURE_ENABLED)
		}
		if cur, pend, r := d.GetMigMode(); r == nvml.SUCCESS {
			g.MIGEnabled, g.MIGPending = gpulib.Bool(cur == nvml.DEVICE_MIG_ENABLE), cur != pend
		}
		p.GPUs = append(p.GPUs, g)
	}
	return p, nil
}

// events reads XID and double-bit ECC events from NVML for every GPU.
type events struct {
	set  nvml.EventSet
	uuid map[nvml.Device]string
}

// watch registers for XID and double-bit ECC events on every GPU that supports them.
func watch(lib nvml.Interface) (*events, error) {
	set, r := lib.EventSetCreate()
	if r != nvml.SUCCESS {
		return nil, fail("event set", r)
	}
	w := &events{set: set, uuid: map[nvml.Device]string{}}
	n, r := lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return nil, fail("device count", r)
	}
	for i := 0; i < n; i++ {
		dev, r := lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			continue
		}
		uuid, _ := dev.GetUUID()
		w.uuid[dev] = uuid
		types := uint64(nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError)
		if r := dev.RegisterEvents(types, set); r != nvml.SUCCESS && r != nvml.ERROR_NOT_SUPPORTED {
			return nil, fail(fmt.Sprintf("events for GPU %d", i), r)
		}
	}
	return w, nil
}

// next returns the next event, or ok=false after timeout.
func (w *events) next(timeout time.Duration) (health.Event, bool, error) {
	d, r := w.set.Wait(uint32(timeout / time.Millisecond))
	if r == nvml.ERROR_TIMEOUT {
		return health.Event{}, false, nil
	}
	if r != nvml.SUCCESS {
		return health.Event{}, false, fail("event wait", r)
	}
	uuid := w.uuid[d.Device]
	if uuid == "" && d.Device != nil {
		uuid, _ = d.Device.GetUUID()
	}
	if d.EventType&nvml.EventTypeDoubleBitEccError != 0 {
		return health.Event{UUID: uuid, Kind: "ecc-dbe"}, true, nil
	}
	return health.Event{UUID: uuid, Kind: "xid", XID: d.EventData}, true, nil
}
