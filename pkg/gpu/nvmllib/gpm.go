package nvmllib

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// gpmMetrics are the GPU performance monitoring metrics read, in the order of gpm's targets.
var gpmMetrics = [...]nvml.GpmMetricId{nvml.GPM_METRIC_ANY_TENSOR_UTIL, nvml.GPM_METRIC_SM_UTIL,
	nvml.GPM_METRIC_SM_OCCUPANCY, nvml.GPM_METRIC_DRAM_BW_UTIL, nvml.GPM_METRIC_GRAPHICS_UTIL}

// gpm sets GPU i's activity ratios (tensor, SM, occupancy, DRAM, graphics: what dcgm-exporter
// reads through DCGM's profiling) from GPU performance monitoring, between the sample taken
// now and the one the last reading took. Hopper and later only; nil elsewhere and on the first
// reading after Open.
func (l *Lib) gpm(i int, dev nvml.Device, g *gpulib.Reading) {
	if sup, r := dev.GpmQueryDeviceSupport(); r != nvml.SUCCESS || sup.IsSupportedDevice == 0 {
		return
	}
	s, r := l.nvml.GpmSampleAlloc()
	if r != nvml.SUCCESS {
		return
	}
	if dev.GpmSampleGet(s) != nvml.SUCCESS {
		s.Free()
		return
	}
	l.mu.Lock()
	if l.gpmLast == nil {
		l.gpmLast = map[int]nvml.GpmSample{}
	}
	prev := l.gpmLast[i]
	l.gpmLast[i] = s
	l.mu.Unlock()
	if prev == nil {
		return
	}
	defer prev.Free()
	get := &nvml.GpmMetricsGetType{Version: nvml.GPM_METRICS_GET_VERSION, NumMetrics: uint32(len(gpmMetrics)), Sample1: prev, Sample2: s}
	for k, id := range gpmMetrics {
		get.Metrics[k].MetricId = uint32(id)
	}
	if l.nvml.GpmMetricsGet(get) != nvml.SUCCESS {
		return
	}
	targets := [...]**float64{&g.TensorActive, &g.SMActive, &g.SMOccupancy, &g.DRAMActive, &g.GraphicsActive}
	for k := range gpmMetrics {
		if m := get.Metrics[k]; nvml.Return(m.NvmlReturn) == nvml.SUCCESS {
			*targets[k] = gpulib.Float(m.Value / 100) // NVML gives percent, DCGM a ratio
		}
	}
}

// freeGPM releases the samples kept between readings; l.mu is held.
func (l *Lib) freeGPM() {
	for i, s := range l.gpmLast {
		s.Free()
		delete(l.gpmLast, i)
	}
}
