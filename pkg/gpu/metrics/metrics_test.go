package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
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
	// GPU 3 held by one container, GPU 5 by two (time-slicing): a series per holder.
	src := Source{Lib: noPower{m}, Hostname: "dgx", XIDs: func(string) uint64 { return 2 },
		Holders: func() (map[string][]podresources.Holder, error) {
			return map[string][]podresources.Holder{
				mockgpu.UUID(3): {{Pod: "train-0", Namespace: "ml", Container: "worker"}},
				mockgpu.UUID(5): {{Pod: "a", Namespace: "default", Container: "c"}, {Pod: "b", Namespace: "default", Container: "c"}},
			}, nil
		}}
	rec := httptest.NewRecorder()
	src.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, name := range All {
		want := 9 // 8 GPUs, GPU 5 twice
		if name == power.name {
			want = 8 // left out, not faked
		}
		if c := strings.Count(out, "\n"+name+"{"); c != want {
			t.Errorf("%s: %d samples, want %d", name, c, want)
		}
		if !strings.Contains(out, "# TYPE "+name+" ") {
			t.Errorf("%s: no TYPE line", name)
		}
	}
	for _, want := range []string{
		`DCGM_FI_DEV_GPU_UTIL{gpu="3",UUID="` + mockgpu.UUID(3) + `",device="nvidia3",modelName="NVIDIA A100-SXM4-40GB",Hostname="dgx",container="worker",namespace="ml",pod="train-0"} 15`,
		`DCGM_FI_DEV_GPU_UTIL{gpu="4",UUID="` + mockgpu.UUID(4) + `",device="nvidia4",modelName="NVIDIA A100-SXM4-40GB",Hostname="dgx"} 20`,
		`DCGM_FI_DEV_SM_CLOCK{gpu="5"`, `Hostname="dgx",container="c",namespace="default",pod="a"} 1410`,
		`Hostname="dgx",container="c",namespace="default",pod="b"} 1410`,
		`DCGM_FI_DEV_MEM_CLOCK{gpu="0"`, "} 1215\n",
		"# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n",
		`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="1"`,
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

// The kubelet unreachable: the GPUs' series all the same, without pod labels.
func TestHoldersUnavailable(t *testing.T) {
	m := mockgpu.DGXA100()
	m.Open()
	defer m.Close()
	var b strings.Builder
	src := Source{Lib: m, Holders: func() (map[string][]podresources.Holder, error) { return nil, io.ErrUnexpectedEOF }}
	if err := src.Write(&b); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(b.String(), "\nDCGM_FI_DEV_GPU_UTIL{"); c != 8 || strings.Contains(b.String(), "pod=") {
		t.Errorf("%d util samples, pod labels: %v", c, strings.Contains(b.String(), "pod="))
	}
}

// A GPU in MIG mode: each MIG device has its memory series, labelled GPU_I_PROFILE and
// GPU_I_ID as dcgm-exporter labels them, naming the pod that holds that device.
func TestMIGDeviceSeries(t *testing.T) {
	m := mockgpu.DGXA100()
	p := mig.GPUPlan{Index: 2, UUID: mockgpu.UUID(2), Enabled: true, Instances: []mig.Instance{
		{Profile: "3g.20gb", ProfileID: 2, Placement: detect.Placement{Start: 0, Size: 4}},
		{Profile: "3g.20gb", ProfileID: 2, Placement: detect.Placement{Start: 4, Size: 4}}}}
	if _, err := m.ApplyMIG(p); err != nil {
		t.Fatal(err)
	}
	m.Open()
	defer m.Close()
	held := "MIG-" + mockgpu.UUID(2) + "/2/0"
	src := Source{Lib: m, Hostname: "dgx", Holders: func() (map[string][]podresources.Holder, error) {
		return map[string][]podresources.Holder{held: {{Pod: "infer", Namespace: "ml", Container: "triton"}}}, nil
	}}
	var b strings.Builder
	if err := src.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	base := `gpu="2",UUID="` + mockgpu.UUID(2) + `",device="nvidia2",modelName="NVIDIA A100-SXM4-40GB",Hostname="dgx"`
	for _, want := range []string{
		`DCGM_FI_DEV_FB_TOTAL{` + base + `,GPU_I_PROFILE="3g.20gb",GPU_I_ID="1"} 19968`,
		`DCGM_FI_DEV_FB_USED{` + base + `,GPU_I_PROFILE="3g.20gb",GPU_I_ID="2",container="triton",namespace="ml",pod="infer"} 2`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if c := strings.Count(out, `GPU_I_ID=`); c != 6 {
		t.Errorf("%d MIG samples, want 2 devices × 3 memory series", c)
	}
}
