package nvmllib

import (
	"errors"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// Events replayed through go-nvml's EventSet mock come out as health events.
func TestEvents(t *testing.T) {
	srv := dgxa100.New()
	var queue []nvml.EventData
	set := &mock.EventSet{WaitFunc: func(uint32) (nvml.EventData, nvml.Return) {
		if len(queue) == 0 {
			return nvml.EventData{}, nvml.ERROR_TIMEOUT
		}
		e := queue[0]
		queue = queue[1:]
		return e, nvml.SUCCESS
	}}
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return set, nvml.SUCCESS }
	registered := 0
	for _, d := range srv.Devices {
		d.(*mockserver.Device).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { registered++; return nvml.SUCCESS }
	}
	lib := New(srv)
	if _, ok, err := lib.NextEvent(time.Millisecond); ok || err != nil {
		t.Fatalf("no event yet: ok=%v err=%v", ok, err)
	}
	if registered != 8 {
		t.Errorf("registered on %d GPUs", registered)
	}
	dev := srv.Devices[2]
	uuid, _ := dev.GetUUID()
	queue = append(queue, nvml.EventData{Device: dev, EventType: nvml.EventTypeXidCriticalError, EventData: 79},
		nvml.EventData{Device: dev, EventType: nvml.EventTypeDoubleBitEccError})
	e, ok, err := lib.NextEvent(time.Second)
	if err != nil || !ok || e.UUID != uuid || e.Kind != "xid" || e.XID != 79 {
		t.Errorf("first event %+v %v %v", e, ok, err)
	}
	e, _, _ = lib.NextEvent(time.Second)
	if e.Kind != "ecc-dbe" {
		t.Errorf("second event %+v", e)
	}
	if _, ok, err := lib.NextEvent(time.Millisecond); ok || err != nil {
		t.Errorf("timeout: ok=%v err=%v", ok, err)
	}
}

// A driver that cannot deliver events says so, wrapped, so the agent stops watching.
func TestNoEvents(t *testing.T) {
	srv := dgxa100.New()
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	if _, _, err := New(srv).NextEvent(time.Millisecond); !errors.Is(err, gpulib.ErrNoEvents) {
		t.Errorf("err = %v, want ErrNoEvents", err)
	}
}

// Readings carry every value NVML answers, and leave out what it cannot read.
func TestReadings(t *testing.T) {
	srv := dgxa100.New()
	for i, d := range srv.Devices {
		dev := d.(*mockserver.Device)
		i := i
		noMore(dev)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 40, nvml.SUCCESS }
		dev.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
			if c == nvml.CLOCK_SM {
				return 1410, nvml.SUCCESS
			}
			return 1215, nvml.SUCCESS
		}
		dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 123456789, nvml.SUCCESS }
		dev.GetPcieReplayCounterFunc = func() (int, nvml.Return) { return i, nvml.SUCCESS }
		dev.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
			if i == 7 || c != nvml.VOLATILE_ECC {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			if t == nvml.MEMORY_ERROR_TYPE_CORRECTED {
				return 5, nvml.SUCCESS
			}
			return 1, nvml.SUCCESS
		}
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			if i == 7 {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			return 250500, nvml.SUCCESS
		}
	}
	rs, err := New(srv).Readings()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 8 {
		t.Fatalf("%d readings", len(rs))
	}
	r := rs[3]
	if r.Index != 3 || r.Name != "Mock NVIDIA A100-SXM4-40GB" || *r.UtilPercent != 30 || *r.PowerW != 250.5 || *r.FBTotalMiB != 40960 || *r.TempC != 40 {
		t.Errorf("reading 3: %+v", r)
	}
	if *r.SMClockMHz != 1410 || *r.MemClockMHz != 1215 || *r.EnergyMJ != 123456789 || *r.PCIeReplays != 3 || *r.ECCSingleBit != 5 || *r.ECCDoubleBit != 1 {
		t.Errorf("reading 3 clocks, energy, replays, ECC: %+v", r)
	}
	if rs[7].PowerW != nil || rs[7].ECCSingleBit != nil || rs[7].ECCDoubleBit != nil {
		t.Errorf("GPU 7 power or ECC counts where NVML has none: %+v", rs[7])
	}
	if !New(srv).Probe(r.UUID) || New(srv).Probe("GPU-nope") {
		t.Error("probe")
	}
}

// Preflight reports persistence and a pending MIG change per GPU.
func TestPreflight(t *testing.T) {
	srv := dgxa100.New()
	for i, d := range srv.Devices {
		dev := d.(*mockserver.Device)
		i := i
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) {
			return map[bool]nvml.EnableState{true: nvml.FEATURE_DISABLED, false: nvml.FEATURE_ENABLED}[i == 2], nvml.SUCCESS
		}
	}
	p, err := New(srv).Preflight()
	if err != nil {
		t.Fatal(err)
	}
	if p.DriverVersion != "550.54.15" || len(p.GPUs) != 8 || *p.GPUs[2].Persistence || !*p.GPUs[1].Persistence || *p.GPUs[0].MIGEnabled || p.GPUs[0].MIGPending {
		t.Errorf("preflight %+v %+v", p, p.GPUs[2])
	}
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	if _, err := New(srv).Preflight(); err == nil {
		t.Error("no error without a library")
	}
}
