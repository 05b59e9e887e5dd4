package nvmllib

import (
	"errors"
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
)

func TestDetectDGXA100(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	n, err := Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	if n.DriverVersion != "550.54.15" || n.CUDADriverMajor != 12 || n.CUDADriverMinor != 4 {
		t.Errorf("versions %+v", n)
	}
	if len(n.GPUs) != 8 {
		t.Fatalf("%d GPUs", len(n.GPUs))
	}
	g := n.GPUs[3]
	if g.Index != 3 || g.Product != "Mock NVIDIA A100-SXM4-40GB" || g.MemoryMiB != 40960 || !g.MIGCapable || g.MIGEnabled {
		t.Errorf("gpu 3: %+v", g)
	}
	if g.PCIBusID != gputest.BusID(3) || len(g.NVLinkPeers) != 7 {
		t.Errorf("gpu 3 pci %q peers %v", g.PCIBusID, g.NVLinkPeers)
	}
}

func TestDetectMIGDevices(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	gputest.PartitionMIG(t, srv, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 7)
	gputest.PartitionMIG(t, srv, 1, nvml.GPU_INSTANCE_PROFILE_3_SLICE, 2)
	n, err := Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	if !n.GPUs[0].MIGEnabled || len(n.GPUs[0].MIG) != 7 || n.GPUs[0].MIG[0].Profile != "1g.5gb" {
		t.Errorf("gpu 0 MIG: %+v", n.GPUs[0].MIG)
	}
	if len(n.GPUs[1].MIG) != 2 || n.GPUs[1].MIG[0].Profile != "3g.20gb" {
		t.Errorf("gpu 1 MIG: %+v", n.GPUs[1].MIG)
	}
	want := fmt.Sprintf("MIG-%s/%d/%d", n.GPUs[0].UUID, n.GPUs[0].MIG[0].GPUInstanceID, n.GPUs[0].MIG[0].ComputeInstanceID)
	if n.GPUs[0].MIG[0].ID != want {
		t.Errorf("MIG id %s want %s", n.GPUs[0].MIG[0].ID, want)
	}
}

func TestNoDriver(t *testing.T) {
	srv := dgxa100.New()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	if _, err := Detect(srv); err == nil || !errors.Is(err, detect.ErrNoDriver) {
		t.Errorf("err = %v, want ErrNoDriver", err)
	}
}
