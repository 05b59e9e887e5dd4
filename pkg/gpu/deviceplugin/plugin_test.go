package deviceplugin

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

func startKubelet(t *testing.T, dir string) *gputest.FakeKubelet { return gputest.StartKubelet(t, dir) }

func dgxResource(t *testing.T, replicas int) (resources.Resource, map[string][]string) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	n, err := nvmllib.Detect(srv)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := resources.Build(n, resources.Config{Strategy: resources.None, Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	links := map[string][]string{}
	for _, g := range n.GPUs {
		links[g.PCIBusID] = g.NVLinkPeers
	}
	return rs[0], links
}

func client(t *testing.T, p *Plugin) pluginapi.DevicePluginClient {
	conn, err := grpc.NewClient("unix://"+filepath.Join(p.Dir, p.Socket()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pluginapi.NewDevicePluginClient(conn)
}

func TestRegisterListAllocateAndHealth(t *testing.T) {
	dir := t.TempDir()
	k := startKubelet(t, dir)
	r, links := dgxResource(t, 1)
	p := New(r, dir, links, nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if k.Count() != 1 || k.Requests()[0].ResourceName != "nvidia.com/gpu" || k.Requests()[0].Endpoint != p.Socket() || !k.Requests()[0].Options.GetPreferredAllocationAvailable {
		t.Fatalf("registration %+v", k.Requests())
	}
	c := client(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || len(first.Devices) != 8 || first.Devices[0].Health != pluginapi.Healthy {
		t.Fatalf("first list %v %v", first, err)
	}
	ids := []string{first.Devices[2].ID, first.Devices[5].ID}
	resp, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids}}})
	if err != nil {
		t.Fatal(err)
	}
	cr := resp.ContainerResponses[0]
	if v := cr.Envs["NVIDIA_VISIBLE_DEVICES"]; !strings.Contains(v, ids[0]) || !strings.Contains(v, ids[1]) || strings.Count(v, ",") != 1 {
		t.Errorf("NVIDIA_VISIBLE_DEVICES = %q", v)
	}
	if len(cr.CdiDevices) != 2 || cr.CdiDevices[0].Name != "nvidia.com/gpu=2" || cr.CdiDevices[1].Name != "nvidia.com/gpu=5" {
		t.Errorf("CDI devices %v", cr.CdiDevices)
	}
	if _, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: []string{"nope"}}}}); err == nil {
		t.Error("allocated an unknown device")
	}

	// Unhealthy and back: the stream reports both, allocatable follows.
	if !p.SetHealth(ids[0], false) || p.Healthy() != 7 {
		t.Fatalf("healthy = %d", p.Healthy())
	}
	next, err := stream.Recv()
	if err != nil || unhealthy(next) != 1 {
		t.Fatalf("after XID: %d unhealthy, %v", unhealthy(next), err)
	}
	p.SetHealth(ids[0], true)
	next, err = stream.Recv()
	if err != nil || unhealthy(next) != 0 || p.Healthy() != 8 {
		t.Fatalf("after recovery: %d unhealthy, %v", unhealthy(next), err)
	}
}

func unhealthy(r *pluginapi.ListAndWatchResponse) int {
	n := 0
	for _, d := range r.Devices {
		if d.Health != pluginapi.Healthy {
			n++
		}
	}
	return n
}

func TestPreferredAllocationAndReplicas(t *testing.T) {
	dir := t.TempDir()
	startKubelet(t, dir)
	r, links := dgxResource(t, 2)
	p := New(r, dir, links, nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c := client(t, p)
	var avail []string
	for _, d := range r.Devices[:4] { // GPU 0 and 1, two replicas each
		avail = append(avail, d.ID)
	}
	resp, err := c.GetPreferredAllocation(context.Background(), &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{AvailableDeviceIDs: avail, AllocationSize: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.ContainerResponses[0].DeviceIDs
	if len(got) != 2 || resources.BaseID(got[0]) == resources.BaseID(got[1]) {
		t.Errorf("preferred %v: want two different GPUs", got)
	}
	// Two replicas of one GPU make one visible device.
	a, err := c.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: avail[:2]}}})
	if err != nil || strings.Contains(a.ContainerResponses[0].Envs["NVIDIA_VISIBLE_DEVICES"], ",") {
		t.Errorf("replicas of one GPU: %v %v", a, err)
	}
}

func TestReRegistersAfterKubeletRestart(t *testing.T) {
	dir := t.TempDir()
	k := startKubelet(t, dir)
	r, links := dgxResource(t, 1)
	p := New(r, dir, links, nil)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// A restarting kubelet removes the plugin sockets and recreates its own.
	k.Stop()
	os.Remove(filepath.Join(dir, p.Socket()))
	k2 := startKubelet(t, dir)
	deadline := time.Now().Add(10 * time.Second)
	for k2.Count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("did not register with the new kubelet")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, p.Socket())); err != nil {
		t.Errorf("plugin socket not served again: %v", err)
	}
}

// After a node restart kubelet.sock is the last kubelet's, refusing connections until the new
// kubelet replaces it: registration waits for it instead of failing the GPU layer's start.
func TestRegisterWaitsForARestartedKubelet(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a stale socket file: connect gets ECONNREFUSED
	r, links := dgxResource(t, 1)
	p := New(r, dir, links, nil)
	p.RegisterTimeout = 20 * time.Second
	kc := make(chan *gputest.FakeKubelet, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		kc <- startKubelet(t, dir)
	}()
	start := time.Now()
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("start with the kubelet coming up later: %v", err)
	}
	defer p.Stop()
	waited := time.Since(start)
	if k := <-kc; waited < time.Second || k.Count() != 1 {
		t.Errorf("registered after %s, %d registrations", waited, k.Count())
	}

	// No kubelet at all: an error within the timeout, naming the registration.
	dir2 := t.TempDir()
	l, _ = net.Listen("unix", filepath.Join(dir2, "kubelet.sock"))
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	p2 := New(r, dir2, links, nil)
	p2.RegisterTimeout = time.Second
	if err := p2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "register with the kubelet") {
		t.Errorf("no kubelet: %v", err)
	}
}
