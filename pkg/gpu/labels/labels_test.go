package labels

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

func TestDGXA100Labels(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	gputest.PartitionMIG(t, srv, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
	n, err := nvmllib.Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	l := For(n, resources.Config{Strategy: resources.Mixed, Replicas: 2})
	want := map[string]string{
		"nvidia.com/gpu.present":        "true",
		"nvidia.com/gpu.product":        "Mock-NVIDIA-A100-SXM4-40GB",
		"nvidia.com/gpu.count":          "8",
		"nvidia.com/gpu.memory":         "40960",
		"nvidia.com/cuda.driver.major":  "550",
		"nvidia.com/cuda.driver.minor":  "54",
		"nvidia.com/cuda.runtime.major": "12",
		"nvidia.com/cuda.runtime.minor": "4",
		"nvidia.com/mig.capable":        "true",
		"nvidia.com/mig.strategy":       "mixed",
		"nvidia.com/gpu.replicas":       "2",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %q, want %q", k, l[k], v)
		}
	}
	if len(For(&detect.Node{}, resources.Config{})) != 0 {
		t.Error("labels on a node without GPUs")
	}
}

func TestPatchRemovesStaleLabels(t *testing.T) {
	cur := map[string]string{"nvidia.com/gpu.count": "8", "nvidia.com/gpu.replicas": "2", "kubernetes.io/os": "linux", "nvidia.com/other": "x"}
	want := map[string]string{"nvidia.com/gpu.count": "7"}
	p := Patch(cur, want)
	if p["nvidia.com/gpu.count"] == nil || *p["nvidia.com/gpu.count"] != "7" {
		t.Errorf("count not updated: %v", p)
	}
	if v, ok := p["nvidia.com/gpu.replicas"]; !ok || v != nil {
		t.Error("stale label not removed")
	}
	if _, ok := p["kubernetes.io/os"]; ok {
		t.Error("touched a label not ours")
	}
	if _, ok := p["nvidia.com/other"]; ok {
		t.Error("touched an nvidia label not ours")
	}
}

func TestValue(t *testing.T) {
	if got := Value("NVIDIA H100 80GB HBM3 (SXM)"); got != "NVIDIA-H100-80GB-HBM3--SXM" {
		t.Errorf("got %q", got)
	}
}
