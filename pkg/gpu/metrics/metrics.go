// Package metrics serves per-GPU metrics through prometheus/client_golang, under
// dcgm-exporter's metric names and labels, so its dashboards and alerts work unchanged.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
)

// DefaultPort is the agent's GPU metrics port (dcgm-exporter's own default is 9400).
const DefaultPort = 9401

// Source reads the live values.
type Source struct {
	Lib      gpulib.Lib
	Hostname string
	// XIDs returns the XID events seen for a GPU since start; LastXID the last one's number.
	XIDs    func(uuid string) uint64
	LastXID func(uuid string) uint64
	// Holders returns GPU UUID (or MIG device ID, MIG-<GPU UUID>/<GI>/<CI>) -> the containers
	// holding it (the kubelet's PodResources API); each holder gets the device's series with
	// pod, namespace and container labels, as dcgm-exporter does. nil, or an error: series
	// without them.
	Holders func() (map[string][]podresources.Holder, error)
}

// series is one metric and how a reading gives it; nil: NVML has no value, left out.
type series struct {
	name, help string
	counter    bool
	get        func(gpulib.Reading) *float64
}

func gauge(name, help string, get func(gpulib.Reading) *float64) series {
	return series{name: name, help: help, get: get}
}

func counter(name, help string, get func(gpulib.Reading) *float64) series {
	return series{name: name, help: help, counter: true, get: get}
}

// gpuSeries are every GPU's series, in dcgm-exporter's names and units.
func gpuSeries() []series {
	return []series{
		gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", func(g gpulib.Reading) *float64 { return g.UtilPercent }),
		gauge("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", func(g gpulib.Reading) *float64 { return g.MemCopyUtilPercent }),
		gauge("DCGM_FI_DEV_ENC_UTIL", "Encoder utilization (in %).", func(g gpulib.Reading) *float64 { return g.EncUtilPercent }),
		gauge("DCGM_FI_DEV_DEC_UTIL", "Decoder utilization (in %).", func(g gpulib.Reading) *float64 { return g.DecUtilPercent }),
		gauge("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", func(g gpulib.Reading) *float64 { return g.FBUsedMiB }),
		gauge("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", func(g gpulib.Reading) *float64 { return g.FBFreeMiB }),
		gauge("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", func(g gpulib.Reading) *float64 { return g.FBTotalMiB }),
		gauge("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", func(g gpulib.Reading) *float64 { return g.TempC }),
		gauge("DCGM_FI_DEV_MEMORY_TEMP", "Memory temperature (in C).", func(g gpulib.Reading) *float64 { return g.MemTempC }),
		gauge("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", func(g gpulib.Reading) *float64 { return g.PowerW }),
		gauge("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Enforced power limit (in W).", func(g gpulib.Reading) *float64 { return g.PowerLimitW }),
		gauge("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", func(g gpulib.Reading) *float64 { return g.SMClockMHz }),
		gauge("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", func(g gpulib.Reading) *float64 { return g.MemClockMHz }),
		counter("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since the driver loaded (in mJ).", func(g gpulib.Reading) *float64 { return g.EnergyMJ }),
		counter("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "Total number of PCIe retries.", func(g gpulib.Reading) *float64 { return g.PCIeReplays }),
		gauge("DCGM_FI_PROF_PCIE_TX_BYTES", "PCIe bytes transmitted per second (the driver's last 20 ms).", func(g gpulib.Reading) *float64 { return g.PCIeTxBytesPerSec }),
		gauge("DCGM_FI_PROF_PCIE_RX_BYTES", "PCIe bytes received per second (the driver's last 20 ms).", func(g gpulib.Reading) *float64 { return g.PCIeRxBytesPerSec }),
		counter("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "Bytes sent and received over all NVLinks since the driver loaded.", func(g gpulib.Reading) *float64 { return g.NVLinkBytes }),
		gauge("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "Why the clocks are held down (NVML's clocks event reasons bitmask).", func(g gpulib.Reading) *float64 { return g.ClocksEventReasons }),
		gauge("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "The same bitmask under its older name, for older dashboards.", func(g gpulib.Reading) *float64 { return g.ClocksEventReasons }),
		counter("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Total number of single-bit volatile ECC errors.", func(g gpulib.Reading) *float64 { return g.ECCSingleBit }),
		counter("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.", func(g gpulib.Reading) *float64 { return g.ECCDoubleBit }),
		counter("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "Total number of single-bit persistent ECC errors.", func(g gpulib.Reading) *float64 { return g.ECCSingleBitAgg }),
		counter("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "Total number of double-bit persistent ECC errors.", func(g gpulib.Reading) *float64 { return g.ECCDoubleBitAgg }),
		counter("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for correctable errors.", func(g gpulib.Reading) *float64 { return g.RemappedCorrectable }),
		counter("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for uncorrectable errors.", func(g gpulib.Reading) *float64 { return g.RemappedUncorrectable }),
		gauge("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed (1).", func(g gpulib.Reading) *float64 { return g.RowRemapFailure }),
		gauge("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Ratio of cycles any tensor pipe is active (GPU performance monitoring, Hopper and later).", func(g gpulib.Reading) *float64 { return g.TensorActive }),
		gauge("DCGM_FI_PROF_SM_ACTIVE", "Ratio of cycles an SM has at least one warp assigned.", func(g gpulib.Reading) *float64 { return g.SMActive }),
		gauge("DCGM_FI_PROF_SM_OCCUPANCY", "Ratio of warps resident on an SM to its maximum.", func(g gpulib.Reading) *float64 { return g.SMOccupancy }),
		gauge("DCGM_FI_PROF_DRAM_ACTIVE", "Ratio of cycles the device memory interface is active.", func(g gpulib.Reading) *float64 { return g.DRAMActive }),
		gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio of time the graphics engine is active (before Hopper: NVML's utilization rate / 100).", graphicsActive),
	}
}

// graphicsActive is GPU performance monitoring's graphics engine ratio, or before Hopper the
// nearest NVML has: the share of time a kernel ran. dcgm-exporter's dashboard charts "GPU
// Utilization" from it.
func graphicsActive(g gpulib.Reading) *float64 {
	if g.GraphicsActive != nil || g.UtilPercent == nil {
		return g.GraphicsActive
	}
	return gpulib.Float(*g.UtilPercent / 100)
}

// migSeries are a MIG device's own series: its memory (NVML has no utilization per device).
func migSeries() []series {
	return []series{
		gauge("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", nil),
		gauge("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", nil),
		gauge("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", nil),
	}
}

const (
	xidErrors = "DCGM_FI_DEV_XID_ERRORS"
	xidTotal  = "outpost_gpu_xid_errors_total"
)

// All is every metric name served.
var All = func() []string {
	var out []string
	for _, s := range gpuSeries() {
		out = append(out, s.name)
	}
	return append(out, xidErrors, xidTotal)
}()

// collector reads the GPUs once per scrape. It describes nothing up front (an unchecked
// collector): the series depend on the GPUs, their MIG devices and the pods holding them.
type collector struct{ s Source }

func (collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends every value NVML answers; one it cannot read is left out, not faked.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	rs, err := c.s.Lib.Readings()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("outpost_gpu_readings", "GPU readings.", nil, nil), fmt.Errorf("GPU readings: %w", err))
		return
	}
	var holders map[string][]podresources.Holder
	if c.s.Holders != nil {
		holders, _ = c.s.Holders() // the GPUs' own values count more than naming their pods
	}
	for _, g := range rs {
		base := labels{names: []string{"gpu", "UUID", "device", "modelName", "Hostname"},
			values: []string{strconv.Itoa(g.Index), g.UUID, fmt.Sprintf("nvidia%d", g.Minor), g.Name, c.s.Hostname}}
		sets := base.held(holders[g.UUID])
		for _, s := range gpuSeries() {
			send(ch, s, s.get(g), sets)
		}
		if c.s.XIDs != nil {
			send(ch, counter(xidTotal, "XID errors seen since the agent started.", nil), gpulib.Float(float64(c.s.XIDs(g.UUID))), sets)
		}
		if c.s.LastXID != nil {
			send(ch, gauge(xidErrors, "The last XID error seen since the agent started (0: none).", nil), gpulib.Float(float64(c.s.LastXID(g.UUID))), sets)
		}
		// Each MIG device has its own memory series, labelled as dcgm-exporter labels them
		// and naming the pods that hold it.
		for _, m := range g.MIG {
			mb := base.with([]string{"GPU_I_PROFILE", "GPU_I_ID"}, []string{m.Profile, strconv.Itoa(m.GPUInstanceID)})
			msets := mb.held(holders[m.ID])
			for i, v := range []*float64{m.FBUsedMiB, m.FBFreeMiB, m.FBTotalMiB} {
				send(ch, migSeries()[i], v, msets)
			}
		}
	}
}

// labels are a series' label names and values.
type labels struct{ names, values []string }

func (l labels) with(names, values []string) labels {
	return labels{names: append(append([]string{}, l.names...), names...), values: append(append([]string{}, l.values...), values...)}
}

// held is one label set per container holding the device, or l alone when none does.
func (l labels) held(hs []podresources.Holder) []labels {
	if len(hs) == 0 {
		return []labels{l}
	}
	out := make([]labels, 0, len(hs))
	for _, h := range hs {
		out = append(out, l.with([]string{"container", "namespace", "pod"}, []string{h.Container, h.Namespace, h.Pod}))
	}
	return out
}

func send(ch chan<- prometheus.Metric, s series, v *float64, sets []labels) {
	if v == nil {
		return
	}
	typ := prometheus.GaugeValue
	if s.counter {
		typ = prometheus.CounterValue
	}
	for _, l := range sets {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(s.name, s.help, l.names, nil), typ, *v, l.values...)
	}
}

// registry holds the collector alone: no Go runtime or process series, as dcgm-exporter.
func (s Source) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	return reg
}

// Write renders the current values in the Prometheus text format.
func (s Source) Write(w io.Writer) error {
	mfs, err := s.registry().Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("GPU metrics: %w", err)
		}
	}
	return nil
}

// Handler serves /metrics; NVML down answers 500, not an empty page that looks like no GPUs.
func (s Source) Handler() http.Handler {
	return promhttp.HandlerFor(s.registry(), promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}
