package labels

import (
	"strconv"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
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
	// Architecture as GPU feature discovery names it; MIG profiles of the mixed strategy.
	mig := n.GPUs[0].MIG[0]
	for k, v := range map[string]string{
		"nvidia.com/gpu.family": "ampere", "nvidia.com/gpu.compute.major": "8", "nvidia.com/gpu.compute.minor": "0",
		"nvidia.com/mig-" + mig.Profile + ".count":    "7",
		"nvidia.com/mig-" + mig.Profile + ".memory":   strconv.FormatUint(mig.MemoryMiB, 10),
		"nvidia.com/mig-" + mig.Profile + ".product":  "Mock-NVIDIA-A100-SXM4-40GB-MIG-" + mig.Profile,
		"nvidia.com/mig-" + mig.Profile + ".replicas": "2",
	} {
		if l[k] != v {
			t.Errorf("%s = %q, want %q", k, l[k], v)
		}
	}
	if mig.Profile != "1g.5gb" || mig.MemoryMiB == 0 {
		t.Errorf("MIG device %+v", mig)
	}
	if _, ok := l["nvidia.com/gpu.machine"]; ok {
		t.Error("gpu.machine without a DMI product name")
	}
	if len(For(&detect.Node{}, resources.Config{})) != 0 {
		t.Error("labels on a node without GPUs")
	}
}

func TestPatchRemovesStaleLabels(t *testing.T) {
	cur := map[string]string{"nvidia.com/gpu.count": "8", "nvidia.com/gpu.replicas": "2", "kubernetes.io/os": "linux", "nvidia.com/other": "x",
		"nvidia.com/mig.config": "all-1g.5gb"}
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
	if _, ok := p["nvidia.com/mig.config"]; ok {
		t.Error("removed the user's nvidia.com/mig.config")
	}
	if _, ok := p["nvidia.com/other"]; ok {
		t.Error("touched an nvidia label not ours")
	}
}

func TestRuntimeLabels(t *testing.T) {
	l := Runtimes([]gpuruntime.Runtime{{Name: "nvidia", Path: "/usr/bin/nvidia-container-runtime"}, {Name: "nvidia-cdi", Path: "/x"}})
	if len(l) != 2 || l["runtime.outpost.io/nvidia"] != "true" || l["runtime.outpost.io/nvidia-cdi"] != "true" {
		t.Errorf("runtime labels %v", l)
	}
	// The toolkit's .cdi binary removed: its label goes, so no RuntimeClass sends pods here.
	p := Patch(l, Runtimes([]gpuruntime.Runtime{{Name: "nvidia"}}))
	if v, ok := p["runtime.outpost.io/nvidia-cdi"]; len(p) != 1 || !ok || v != nil {
		t.Errorf("patch %v, want only runtime.outpost.io/nvidia-cdi removed", p)
	}
}

func TestSingleStrategyAndMachine(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	for i := 0; i < 2; i++ {
		gputest.PartitionMIG(t, srv, i, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
	}
	n, err := nvmllib.Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	n.Machine = "DGXA100 920-23687-2530-000"
	l := For(n, resources.Config{Strategy: resources.Single, Replicas: 1})
	// As GPU feature discovery: with single, the gpu.* labels describe the MIG device.
	for k, v := range map[string]string{"nvidia.com/gpu.count": "14", "nvidia.com/gpu.product": "Mock-NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
		"nvidia.com/gpu.memory": strconv.FormatUint(n.GPUs[0].MIG[0].MemoryMiB, 10), "nvidia.com/gpu.machine": "DGXA100-920-23687-2530-000"} {
		if l[k] != v {
			t.Errorf("%s = %q, want %q", k, l[k], v)
		}
	}
	for k := range l {
		if strings.HasPrefix(k, "nvidia.com/mig-") {
			t.Errorf("per-profile label %s with the single strategy", k)
		}
	}
	// Back to whole GPUs: the per-profile labels of the old layout are removed.
	mixed := For(n, resources.Config{Strategy: resources.Mixed, Replicas: 1})
	p := Patch(mixed, For(&detect.Node{GPUs: []detect.GPU{{Product: "x", ComputeMajor: 8}}}, resources.Config{}))
	if v, ok := p["nvidia.com/mig-1g.5gb.count"]; !ok || v != nil {
		t.Errorf("stale mig-1g.5gb.count not removed: %v", p)
	}
}

func TestFamily(t *testing.T) {
	for _, c := range []struct {
		major, minor int
		want         string
	}{{7, 0, "volta"}, {7, 5, "turing"}, {8, 0, "ampere"}, {8, 6, "ampere"}, {8, 9, "ada-lovelace"}, {9, 0, "hopper"}, {10, 0, "blackwell"}, {4, 0, "undefined"}} {
		if got := Family(c.major, c.minor); got != c.want {
			t.Errorf("Family(%d, %d) = %q, want %q", c.major, c.minor, got, c.want)
		}
	}
}

func TestValue(t *testing.T) {
	if got := Value("NVIDIA H100 80GB HBM3 (SXM)"); got != "NVIDIA-H100-80GB-HBM3--SXM" {
		t.Errorf("got %q", got)
	}
}
