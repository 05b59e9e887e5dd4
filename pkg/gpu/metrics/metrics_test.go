package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

func TestEveryMetricPerGPU(t *testing.T) {
	srv := dgxa100.New()
	for i, d := range srv.Devices {
		dev := d.(*mockserver.Device)
		i := i
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 40, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 250500, nvml.SUCCESS }
	}
	src := Source{Lib: srv, Hostname: "dgx", XIDs: func(string) uint64 { return 2 }}
	rec := httptest.NewRecorder()
	src.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, name := range All {
		if c := strings.Count(out, "\n"+name+"{"); c != 8 {
			t.Errorf("%s: %d samples, want 8", name, c)
		}
		if !strings.Contains(out, "# TYPE "+name+" ") {
			t.Errorf("%s: no TYPE line", name)
		}
	}
	uuid, _ := srv.Devices[3].GetUUID()
	for _, want := range []string{
		`DCGM_FI_DEV_GPU_UTIL{gpu="3",UUID="` + uuid + `",device="nvidia3",modelName="Mock NVIDIA A100-SXM4-40GB",Hostname="dgx"} 30`,
		`DCGM_FI_DEV_POWER_USAGE{gpu="3"`, "} 250.5",
		`DCGM_FI_DEV_FB_TOTAL{gpu="0"`, "} 40960",
		`outpost_gpu_xid_errors_total{gpu="7"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
