package podresources

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// kubelet answers List as the kubelet does, over a real gRPC server on a unix socket.
type kubelet struct {
	podresourcesapi.UnimplementedPodResourcesListerServer
	resp *podresourcesapi.ListPodResourcesResponse
}

func (k *kubelet) List(context.Context, *podresourcesapi.ListPodResourcesRequest) (*podresourcesapi.ListPodResourcesResponse, error) {
	return k.resp, nil
}

func container(name string, devs ...*podresourcesapi.ContainerDevices) *podresourcesapi.ContainerResources {
	return &podresourcesapi.ContainerResources{Name: name, Devices: devs}
}

func devices(resource string, ids ...string) *podresourcesapi.ContainerDevices {
	return &podresourcesapi.ContainerDevices{ResourceName: resource, DeviceIds: ids}
}

func TestHoldersFromTheKubelet(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresourcesapi.RegisterPodResourcesListerServer(srv, &kubelet{resp: &podresourcesapi.ListPodResourcesResponse{
		PodResources: []*podresourcesapi.PodResources{
			{Name: "train", Namespace: "ml", Containers: []*podresourcesapi.ContainerResources{
				container("worker", devices("nvidia.com/gpu", "GPU-a", "GPU-b")),
				container("sidecar"),
			}},
			// Two replicas of GPU-c (time-slicing) in one container count once; a NIC is not a GPU.
			{Name: "infer", Namespace: "default", Containers: []*podresourcesapi.ContainerResources{
				container("triton", devices("nvidia.com/gpu", "GPU-c::0", "GPU-c::1"), devices("example.com/nic", "nic0")),
			}},
			{Name: "infer2", Namespace: "default", Containers: []*podresourcesapi.ContainerResources{
				container("triton", devices("nvidia.com/gpu", "GPU-c::2")),
			}},
		}}})
	go srv.Serve(l)
	defer srv.Stop()

	c := Client{Socket: sock, Devices: map[string]string{"GPU-a": "GPU-a", "GPU-b": "GPU-b",
		"GPU-c::0": "GPU-c", "GPU-c::1": "GPU-c", "GPU-c::2": "GPU-c", "GPU-d": "GPU-d"}}
	got, err := c.Holders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Holder{
		"GPU-a": {{"train", "ml", "worker"}},
		"GPU-b": {{"train", "ml", "worker"}},
		"GPU-c": {{"infer", "default", "triton"}, {"infer2", "default", "triton"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("holders\n got %v\nwant %v", got, want)
	}
}

func TestNoKubelet(t *testing.T) {
	c := Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
	if _, err := c.Holders(context.Background()); err == nil {
		t.Error("no error without a kubelet")
	}
}
