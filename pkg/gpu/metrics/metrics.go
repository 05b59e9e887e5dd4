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
)

// DefaultPort is the agent's GPU metrics port (dcgm-exporter's own default is 9400).
const DefaultPort = 9401

// Source reads the live values.
type Source struct {
	Lib      gpulib.Lib
	Hostname string
	// XIDs returns the XID events seen for a GPU since start.
	XIDs func(uuid string) uint64
}

type metric struct{ name, help, typ string }

var (
	util   = metric{"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "gauge"}
	fbUsed = metric{"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "gauge"}
	fbFree = metric{"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "gauge"}
	fbTot  = metric{"DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", "gauge"}
	temp   = metric{"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "gauge"}
	power  = metric{"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "gauge"}
	xids   = metric{"outpost_gpu_xid_errors_total", "XID errors seen since the agent started (dcgm-exporter has only the last XID).", "counter"}
)

// All is every metric name served.
var All = []string{util.name, fbUsed.name, fbFree.name, fbTot.name, temp.name, power.name, xids.name}

// Write renders the current values. A value NVML cannot read is left out, not faked.
func (s Source) Write(w io.Writer) error {
	rs, err := s.Lib.Readings()
	if err != nil {
		return fmt.Errorf("GPU readings: %w", err)
	}
	samples := map[metric][]string{}
	add := func(m metric, labels string, v *float64) {
		if v != nil {
			samples[m] = append(samples[m], fmt.Sprintf("%s{%s} %g", m.name, labels, *v))
		}
	}
	for _, g := range rs {
		labels := fmt.Sprintf(`gpu="%d",UUID="%s",device="nvidia%d",modelName="%s",Hostname="%s"`, g.Index, g.UUID, g.Minor, esc(g.Name), esc(s.Hostname))
		add(util, labels, g.UtilPercent)
		add(fbUsed, labels, g.FBUsedMiB)
		add(fbFree, labels, g.FBFreeMiB)
		add(fbTot, labels, g.FBTotalMiB)
		add(temp, labels, g.TempC)
		add(power, labels, g.PowerW)
		if s.XIDs != nil {
			add(xids, labels, gpulib.Float(float64(s.XIDs(g.UUID))))
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
