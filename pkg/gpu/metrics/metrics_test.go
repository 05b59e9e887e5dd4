package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// noPower is the mock with one GPU whose power NVML cannot read.
type noPower struct{ *mockgpu.Machine }

func (n noPower) Readings() ([]gpulib.Reading, error) {
	rs, err := n.Machine.Readings()
	if err == nil {
		rs[7].PowerW = nil
	}
	return rs, err
}

func TestEveryMetricPerGPU(t *testing.T) {
	m := mockgpu.DGXA100()
	m.Open()
	defer m.Close()
	src := Source{Lib: noPower{m}, Hostname: "dgx", XIDs: func(string) uint64 { return 2 }}
	rec := httptest.NewRecorder()
	src.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, name := range All {
		want := 8
		if name == power.name {
			want = 7 // left out, not faked
		}
		if c := strings.Count(out, "\n"+name+"{"); c != want {
			t.Errorf("%s: %d samples, want %d", name, c, want)
		}
		if !strings.Contains(out, "# TYPE "+name+" ") {
			t.Errorf("%s: no TYPE line", name)
		}
	}
	for _, want := range []string{
		`DCGM_FI_DEV_GPU_UTIL{gpu="3",UUID="` + mockgpu.UUID(3) + `",device="nvidia3",modelName="NVIDIA A100-SXM4-40GB",Hostname="dgx"} 15`,
		`DCGM_FI_DEV_POWER_USAGE{gpu="3"`, "} 62\n",
		`DCGM_FI_DEV_FB_TOTAL{gpu="0"`, "} 40960",
		`outpost_gpu_xid_errors_total{gpu="7"`, "} 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// NVML down: an error, not an empty page that looks like no GPUs.
func TestLibraryDown(t *testing.T) {
	rec := httptest.NewRecorder()
	Source{Lib: mockgpu.DGXA100()}.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 {
		t.Errorf("status %d", rec.Code)
	}
}
