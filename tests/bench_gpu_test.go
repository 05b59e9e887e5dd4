package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestBenchGPU is part of `make bench`: seconds from start to nvidia.com/gpu allocatable (NVML
// mock), and the device plugin's Allocate latency.
func TestBenchGPU(t *testing.T) {
	if os.Getenv("OUTPOST_BENCH") == "" {
		t.Skip("a report, not a test: run `make bench`")
	}
	root := t.TempDir()
	devRoot, driverRoot := fakeGPUHost(t, root)
	s := harness.NewServer(t, "--gpu-mock", "dgxa100", "--gpu-dev-root", devRoot, "--gpu-driver-root", driverRoot)
	s.Args = append(s.Args, "--gpu-cdi-dir", filepath.Join(s.Root, "cdi"))
	t.Cleanup(s.Cleanup)
	s.Start()
	var ready float64
	harness.Eventually(t, 3*time.Minute, "nvidia.com/gpu allocatable", func() error {
		out, _ := s.Kubectl("get", "node", "-o", `jsonpath={.items[0].status.allocatable.nvidia\.com/gpu}`)
		if strings.TrimSpace(out) != "8" {
			return fmt.Errorf("%q", out)
		}
		ready = time.Since(s.Started()).Seconds()
		return nil
	})
	// The plugin's socket name carries a per-start suffix (the kubelet refuses a re-registration
	// on the same path): the newest one for the resource.
	socks, _ := filepath.Glob("/var/lib/kubelet/device-plugins/outpost-nvidia-com-gpu*.sock")
	if len(socks) == 0 {
		t.Fatal("no nvidia.com/gpu device plugin socket")
	}
	sort.Slice(socks, func(i, j int) bool { return modTime(socks[i]).After(modTime(socks[j])) })
	conn, err := grpc.NewClient("unix://"+socks[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pluginapi.NewDevicePluginClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{list.Devices[0].ID, list.Devices[1].ID}
	var lat []float64
	for i := 0; i < 500; i++ {
		t0 := time.Now()
		if _, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids}}}); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds()))
	}
	sort.Float64s(lat)
	fmt.Println()
	fmt.Println("| GPU measurement (NVML mock, 8 x A100) | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| start to nvidia.com/gpu=8 allocatable | %.1f s |\n", ready)
	fmt.Printf("| Allocate (2 GPUs) latency p50 / p99, 500 calls | %.0f / %.0f µs |\n", lat[len(lat)/2], lat[len(lat)*99/100])
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
