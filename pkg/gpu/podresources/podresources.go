// Package podresources asks the kubelet which containers hold which GPUs, through its
// PodResources API (the source dcgm-exporter uses), so the GPU metrics can name the pod behind
// each GPU.
package podresources

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Holder is a container holding a GPU.
type Holder struct{ Pod, Namespace, Container string }

// Client lists the holders over the kubelet's socket.
type Client struct {
	Socket string
	// Devices maps each device ID the device plugins advertise to the GPU it stands for (a
	// time-slicing replica's ID to its GPU's UUID).
	Devices map[string]string
	Timeout time.Duration // default 2 s: a scrape must not hang on a stuck kubelet
}

// Holders returns GPU UUID -> the containers holding it.
func (c Client) Holders(ctx context.Context) (map[string][]Holder, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("kubelet pod resources: %w", err)
	}
	defer conn.Close()
	resp, err := podresourcesapi.NewPodResourcesListerClient(conn).List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("kubelet pod resources: %w", err)
	}
	return Map(resp, c.Devices), nil
}

// Map turns the kubelet's answer into GPU UUID -> holders: each container once per GPU, in
// the answer's order; devices not in devices (another plugin's) are skipped.
func Map(resp *podresourcesapi.ListPodResourcesResponse, devices map[string]string) map[string][]Holder {
	out := map[string][]Holder{}
	for _, p := range resp.GetPodResources() {
		for _, ctr := range p.GetContainers() {
			h := Holder{Pod: p.GetName(), Namespace: p.GetNamespace(), Container: ctr.GetName()}
			for _, d := range ctr.GetDevices() {
				for _, id := range d.GetDeviceIds() {
					gpu, ok := devices[id]
					if !ok || slices.Contains(out[gpu], h) {
						continue
					}
					out[gpu] = append(out[gpu], h)
				}
			}
		}
	}
	return out
}
