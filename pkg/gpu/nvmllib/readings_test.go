package nvmllib

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// noMore answers every reading call as a GPU without the value does (go-nvml's model has
// none of them).
func noMore(d *mockserver.Device) {
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetClockInfoFunc = func(nvml.ClockType) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetPcieReplayCounterFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
		return 0, nvml.ERROR_NOT_SUPPORTED
	}
	d.GetEncoderUtilizationFunc = func() (uint32, uint32, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetDecoderUtilizationFunc = func() (uint32, uint32, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetPcieThroughputFunc = func(nvml.PcieUtilCounter) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED }
	d.GetFieldValuesFunc = func([]nvml.FieldValue) nvml.Return { return nvml.ERROR_NOT_SUPPORTED }
	d.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { return nvml.GpmSupport{}, nvml.SUCCESS }
}

func u64(v uint64) [8]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b
}

// The values beyond the basic ones: each read where NVML has it, nil where it has not, and the
// activity ratios from two performance monitoring samples (on a Hopper-like GPU 3 only).
func TestMoreReadings(t *testing.T) {
	srv := dgxa100.New()
	var freed int
	srv.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
		return &mock.GpmSample{FreeFunc: func() nvml.Return { freed++; return nvml.SUCCESS }}, nvml.SUCCESS
	}
	srv.GpmMetricsGetFunc = func(g *nvml.GpmMetricsGetType) nvml.Return {
		if g.Sample1 == nil || g.Sample2 == nil || g.Sample1 == g.Sample2 {
			t.Errorf("GPM metrics between %v and %v", g.Sample1, g.Sample2)
		}
		for k := 0; k < int(g.NumMetrics); k++ {
			g.Metrics[k].Value = float64(10 * (k + 1)) // percent
		}
		return nvml.SUCCESS
	}
	for i, d := range srv.Devices {
		dev := d.(*mockserver.Device)
		noMore(dev)
		if i != 3 {
			continue
		}
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 50, Memory: 7}, nvml.SUCCESS }
		dev.GetEncoderUtilizationFunc = func() (uint32, uint32, nvml.Return) { return 11, 167000, nvml.SUCCESS }
		dev.GetDecoderUtilizationFunc = func() (uint32, uint32, nvml.Return) { return 12, 167000, nvml.SUCCESS }
		dev.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 400000, nvml.SUCCESS }
		dev.GetPcieThroughputFunc = func(c nvml.PcieUtilCounter) (uint32, nvml.Return) {
			return map[nvml.PcieUtilCounter]uint32{nvml.PCIE_UTIL_TX_BYTES: 100, nvml.PCIE_UTIL_RX_BYTES: 200}[c], nvml.SUCCESS
		}
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return 0x4, nvml.SUCCESS }
		dev.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
			if c == nvml.AGGREGATE_ECC && t == nvml.MEMORY_ERROR_TYPE_UNCORRECTED {
				return 2, nvml.SUCCESS
			}
			return 9, nvml.SUCCESS
		}
		dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 3, 1, false, true, nvml.SUCCESS }
		dev.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
			for k := range fv {
				switch fv[k].FieldId {
				case nvml.FI_DEV_MEMORY_TEMP:
					fv[k].ValueType, fv[k].Value = uint32(nvml.VALUE_TYPE_UNSIGNED_INT), u64(45)
				case nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_TX, nvml.FI_DEV_NVLINK_THROUGHPUT_DATA_RX:
					if fv[k].ScopeId != math.MaxUint32 {
						t.Errorf("NVLink field %d for link %d, not all links", fv[k].FieldId, fv[k].ScopeId)
					}
					fv[k].ValueType, fv[k].Value = uint32(nvml.VALUE_TYPE_UNSIGNED_LONG_LONG), u64(1000)
				}
			}
			return nvml.SUCCESS
		}
		dev.GpmQueryDeviceSupportFunc = func() (nvml.GpmSupport, nvml.Return) { return nvml.GpmSupport{IsSupportedDevice: 1}, nvml.SUCCESS }
		dev.GpmSampleGetFunc = func(nvml.GpmSample) nvml.Return { return nvml.SUCCESS }
	}
	l := New(srv)
	first, err := l.Readings()
	if err != nil {
		t.Fatal(err)
	}
	if first[3].TensorActive != nil {
		t.Errorf("activity from a single sample: %v", *first[3].TensorActive)
	}
	rs, err := l.Readings()
	if err != nil {
		t.Fatal(err)
	}
	r := rs[3]
	for name, c := range map[string]struct {
		got  *float64
		want float64
	}{
		"copy util": {r.MemCopyUtilPercent, 7}, "encoder": {r.EncUtilPercent, 11}, "decoder": {r.DecUtilPercent, 12},
		"power limit": {r.PowerLimitW, 400}, "PCIe tx": {r.PCIeTxBytesPerSec, 100 * 1024}, "PCIe rx": {r.PCIeRxBytesPerSec, 200 * 1024},
		"clock events": {r.ClocksEventReasons, 4}, "SBE aggregate": {r.ECCSingleBitAgg, 9}, "DBE aggregate": {r.ECCDoubleBitAgg, 2},
		"remapped correctable": {r.RemappedCorrectable, 3}, "remapped uncorrectable": {r.RemappedUncorrectable, 1},
		"remap failure": {r.RowRemapFailure, 1}, "memory temp": {r.MemTempC, 45}, "NVLink bytes": {r.NVLinkBytes, 2000 * 1024},
		"tensor": {r.TensorActive, 0.1}, "SM active": {r.SMActive, 0.2}, "SM occupancy": {r.SMOccupancy, 0.3},
		"DRAM": {r.DRAMActive, 0.4}, "graphics": {r.GraphicsActive, 0.5},
	} {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
	if o := rs[2]; o.EncUtilPercent != nil || o.NVLinkBytes != nil || o.TensorActive != nil || o.RemappedCorrectable != nil {
		t.Errorf("GPU 2 has values NVML does not give: %+v", o)
	}
	if freed != 1 {
		t.Errorf("%d samples freed after two readings, want the first", freed)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if freed != 2 {
		t.Errorf("Close left %d samples", 2-freed)
	}
}
