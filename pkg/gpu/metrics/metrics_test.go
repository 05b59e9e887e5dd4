package metrics

import (
	"io"
	"net/http/httptest"
	"strconv"
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
	src := Source{Lib: noPower{m}, Hostname: "dgx", XIDs: func(string) uint64 { return 2 }, LastXID: func(string) uint64 { return 79 },
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
		switch {
		case name == "DCGM_FI_DEV_POWER_USAGE":
			want = 8 // left out, not faked
		case strings.HasPrefix(name, "DCGM_FI_PROF_") && !strings.HasPrefix(name, "DCGM_FI_PROF_PCIE") && name != "DCGM_FI_PROF_GR_ENGINE_ACTIVE":
			want = 0 // an A100 has no GPU performance monitoring
		}
		if c := strings.Count(out, "\n"+name+"{"); c != want {
			t.Errorf("%s: %d samples, want %d", name, c, want)
		}
		if want > 0 && !strings.Contains(out, "# TYPE "+name+" ") {
			t.Errorf("%s: no TYPE line", name)
		}
	}
	// Labels come sorted, as client_golang writes them.
	a100 := `modelName="NVIDIA A100-SXM4-40GB"`
	gpu := func(i int) string {
		return `Hostname="dgx",UUID="` + mockgpu.UUID(i) + `",device="nvidia` + strconv.Itoa(i) + `",gpu="` + strconv.Itoa(i) + `",` + a100
	}
	held := func(i int, container, ns, pod string) string {
		return `Hostname="dgx",UUID="` + mockgpu.UUID(i) + `",container="` + container + `",device="nvidia` + strconv.Itoa(i) + `",gpu="` +
			strconv.Itoa(i) + `",` + a100 + `,namespace="` + ns + `",pod="` + pod + `"`
	}
	for _, want := range []string{
		`DCGM_FI_DEV_GPU_UTIL{` + held(3, "worker", "ml", "train-0") + `} 15` + "\n",
		`DCGM_FI_DEV_GPU_UTIL{` + gpu(4) + `} 20` + "\n",
		`DCGM_FI_DEV_SM_CLOCK{` + held(5, "c", "default", "a") + `} 1410` + "\n",
		`DCGM_FI_DEV_SM_CLOCK{` + held(5, "c", "default", "b") + `} 1410` + "\n",
		`DCGM_FI_DEV_MEM_CLOCK{` + gpu(0) + "} 1215\n",
		"# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n",
		`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{` + gpu(1) + "} 0\n",
		`DCGM_FI_DEV_POWER_USAGE{` + held(3, "worker", "ml", "train-0") + "} 62\n",
		`DCGM_FI_DEV_FB_TOTAL{` + gpu(0) + "} 40960\n",
		`outpost_gpu_xid_errors_total{` + gpu(7) + "} 2\n",
		`DCGM_FI_DEV_XID_ERRORS{` + gpu(7) + "} 79\n",
		`DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{` + gpu(2) + "} 2.147483648e+09\n",
		"# TYPE DCGM_FI_DEV_XID_ERRORS gauge\n",
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
	u := mockgpu.UUID(2)
	for _, want := range []string{
		`DCGM_FI_DEV_FB_TOTAL{GPU_I_ID="1",GPU_I_PROFILE="3g.20gb",Hostname="dgx",UUID="` + u + `",device="nvidia2",gpu="2",modelName="NVIDIA A100-SXM4-40GB"} 19968`,
		`DCGM_FI_DEV_FB_USED{GPU_I_ID="2",GPU_I_PROFILE="3g.20gb",Hostname="dgx",UUID="` + u + `",container="triton",device="nvidia2",gpu="2",modelName="NVIDIA A100-SXM4-40GB",namespace="ml",pod="infer"} 2`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if c := strings.Count(out, `GPU_I_ID=`); c != 6 {
		t.Errorf("%d MIG samples, want 2 devices × 3 memory series", c)
	}
}

// dcgm-exporter's own Grafana dashboard (grafana.com 12239, NVIDIA/dcgm-exporter's
// grafana/dcgm-exporter-dashboard.json): each panel's series and the labels it groups and
// filters by. Every panel has data from a node's metrics, the tensor panel from Hopper on.
func TestUpstreamDashboardPanels(t *testing.T) {
	panels := map[string]string{
		"GPU Temperature": "DCGM_FI_DEV_GPU_TEMP", "GPU Avg. Temp": "DCGM_FI_DEV_GPU_TEMP",
		"GPU Power Usage": "DCGM_FI_DEV_POWER_USAGE", "GPU Power Total": "DCGM_FI_DEV_POWER_USAGE",
		"GPU SM Clocks": "DCGM_FI_DEV_SM_CLOCK", "GPU Utilization": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
		"Tensor Core Utilization": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "GPU Framebuffer Mem Used": "DCGM_FI_DEV_FB_USED",
		"$Hostname and $gpu variables": "DCGM_FI_DEV_FB_FREE",
	}
	m := mockgpu.DGXA100()
	m.Open()
	defer m.Close()
	var b strings.Builder
	if err := (Source{Lib: hopper{m}, Hostname: "dgx"}).Write(&b); err != nil {
		t.Fatal(err)
	}
	for title, name := range panels {
		found := false
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, name+"{") && strings.Contains(l, `Hostname="dgx"`) && strings.Contains(l, `gpu="`) && strings.Contains(l, `UUID="`) {
				found = true
			}
		}
		if !found {
			t.Errorf("panel %q: no %s series with Hostname, gpu and UUID", title, name)
		}
	}
}

// hopper is the mock with GPU performance monitoring, as an H100 has.
type hopper struct{ *mockgpu.Machine }

func (h hopper) Readings() ([]gpulib.Reading, error) {
	rs, err := h.Machine.Readings()
	for i := range rs {
		rs[i].TensorActive = gpulib.Float(0.25)
	}
	return rs, err
}
