// Package metrics serves per-GPU metrics in the Prometheus text format, under dcgm-exporter's
// metric names where one exists, so existing dashboards work unchanged.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
)

// DefaultPort is the agent's GPU metrics port (dcgm-exporter's own default is 9400).
const DefaultPort = 9401

// Source reads the live values.
type Source struct {
	Lib      gpulib.Lib
	Hostname string
	// XIDs returns the XID events seen for a GPU since start.
	XIDs func(uuid string) uint64
	// Holders returns GPU UUID (or MIG device ID, MIG-<GPU UUID>/<GI>/<CI>) -> the containers
	// holding it (the kubelet's PodResources API); each holder gets the device's series with
	// pod, namespace and container labels, as dcgm-exporter does. nil, or an error: series
	// without them.
	Holders func() (map[string][]podresources.Holder, error)
}

type metric struct{ name, help, typ string }

var (
	util   = metric{"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "gauge"}
	fbUsed = metric{"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "gauge"}
	fbFree = metric{"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "gauge"}
	fbTot  = metric{"DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", "gauge"}
	temp   = metric{"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "gauge"}
	power  = metric{"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "gauge"}
	smClk  = metric{"DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "gauge"}
	memClk = metric{"DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", "gauge"}
	energy = metric{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since the driver loaded (in mJ).", "counter"}
	replay = metric{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "Total number of PCIe retries.", "counter"}
	sbe    = metric{"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Total number of single-bit volatile ECC errors.", "counter"}
	dbe    = metric{"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.", "counter"}
	xids   = metric{"outpost_gpu_xid_errors_total", "XID errors seen since the agent started (dcgm-exporter has only the last XID).", "counter"}
)

// All is every metric name served.
var All = []string{util.name, fbUsed.name, fbFree.name, fbTot.name, temp.name, power.name,
	smClk.name, memClk.name, energy.name, replay.name, sbe.name, dbe.name, xids.name}

// Write renders the current values. A value NVML cannot read is left out, not faked.
func (s Source) Write(w io.Writer) error {
	rs, err := s.Lib.Readings()
	if err != nil {
		return fmt.Errorf("GPU readings: %w", err)
	}
	var holders map[string][]podresources.Holder
	if s.Holders != nil {
		holders, _ = s.Holders() // the GPUs' own values count more than naming their pods
	}
	samples := map[metric][]string{}
	for _, g := range rs {
		base := fmt.Sprintf(`gpu="%d",UUID="%s",device="nvidia%d",modelName="%s",Hostname="%s"`, g.Index, g.UUID, g.Minor, esc(g.Name), esc(s.Hostname))
		sets := []string{base}
		if hs := holders[g.UUID]; len(hs) > 0 {
			sets = sets[:0]
			for _, h := range hs {
				sets = append(sets, fmt.Sprintf(`%s,container="%s",namespace="%s",pod="%s"`, base, esc(h.Container), esc(h.Namespace), esc(h.Pod)))
			}
		}
		add := func(m metric, v *float64) {
			for _, labels := range sets {
				if v != nil {
					samples[m] = append(samples[m], fmt.Sprintf("%s{%s} %g", m.name, labels, *v))
				}
			}
		}
		add(util, g.UtilPercent)
		add(fbUsed, g.FBUsedMiB)
		add(fbFree, g.FBFreeMiB)
		add(fbTot, g.FBTotalMiB)
		add(temp, g.TempC)
		add(power, g.PowerW)
		add(smClk, g.SMClockMHz)
		add(memClk, g.MemClockMHz)
		add(energy, g.EnergyMJ)
		add(replay, g.PCIeReplays)
		add(sbe, g.ECCSingleBit)
		add(dbe, g.ECCDoubleBit)
		if s.XIDs != nil {
			add(xids, gpulib.Float(float64(s.XIDs(g.UUID))))
		}
		// Each MIG device has its own memory series, labelled as dcgm-exporter labels them
		// and naming the pods that hold it.
		for _, m := range g.MIG {
			mb := fmt.Sprintf(`%s,GPU_I_PROFILE="%s",GPU_I_ID="%d"`, base, esc(m.Profile), m.GPUInstanceID)
			msets := []string{mb}
			if hs := holders[m.ID]; len(hs) > 0 {
				msets = msets[:0]
				for _, h := range hs {
					msets = append(msets, fmt.Sprintf(`%s,container="%s",namespace="%s",pod="%s"`, mb, esc(h.Container), esc(h.Namespace), esc(h.Pod)))
				}
			}
			for _, mv := range []struct {
				m metric
				v *float64
			}{{fbUsed, m.FBUsedMiB}, {fbFree, m.FBFreeMiB}, {fbTot, m.FBTotalMiB}} {
				for _, labels := range msets {
					if mv.v != nil {
						samples[mv.m] = append(samples[mv.m], fmt.Sprintf("%s{%s} %g", mv.m.name, labels, *mv.v))
					}
				}
			}
		}
	}
	ms := make([]metric, 0, len(samples))
	for m := range samples {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(a, b int) bool { return ms[a].name < ms[b].name })
	for _, m := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s\n", m.name, m.help, m.name, m.typ, strings.Join(samples[m], "\n"))
	}
	return nil
}

func esc(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) }

// Handler serves /metrics.
func (s Source) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := s.Write(w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}
