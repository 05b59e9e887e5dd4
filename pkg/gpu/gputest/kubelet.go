package gputest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// FakeKubelet is the registration side of the kubelet's device-plugin API.
type FakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	mu   sync.Mutex
	reqs []*pluginapi.RegisterRequest
	srv  *grpc.Server
}

// StartKubelet serves dir/kubelet.sock until the test ends.
func StartKubelet(t testing.TB, dir string) *FakeKubelet {
	t.Helper()
	sock := filepath.Join(dir, "kubelet.sock")
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	k := &FakeKubelet{srv: grpc.NewServer()}
	pluginapi.RegisterRegistrationServer(k.srv, k)
	go k.srv.Serve(l)
	t.Cleanup(k.srv.Stop)
	return k
}

func (k *FakeKubelet) Register(_ context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reqs = append(k.reqs, r)
	return &pluginapi.Empty{}, nil
}

// Count is how many registrations arrived.
func (k *FakeKubelet) Count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.reqs)
}

// Requests are the registrations so far.
func (k *FakeKubelet) Requests() []*pluginapi.RegisterRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*pluginapi.RegisterRequest(nil), k.reqs...)
}

// Stop stops serving, as a restarting kubelet does.
func (k *FakeKubelet) Stop() { k.srv.Stop() }
