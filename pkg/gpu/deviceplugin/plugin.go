// Package deviceplugin serves one extended resource (nvidia.com/gpu or nvidia.com/mig-…) to
// the kubelet over the device-plugin API v1beta1, from inside the Outpost process: it
// registers, streams device health, answers Allocate with CDI device names and
// NVIDIA_VISIBLE_DEVICES, prefers NVLinked GPUs, and re-registers when the kubelet restarts.
package deviceplugin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/outpostk8s/outpost/pkg/gpu/allocate"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// Plugin serves one resource.
type Plugin struct {
	pluginapi.UnimplementedDevicePluginServer

	Resource string
	Dir      string // the kubelet's device-plugin dir, holding kubelet.sock
	Links    map[string][]string
	Log      *slog.Logger
	// RegisterTimeout bounds the wait for the kubelet to answer a registration (a minute).
	RegisterTimeout time.Duration

	mu      sync.Mutex
	devices []resources.Device
	byID    map[string]resources.Device
	health  map[string]bool // by base ID (a physical or MIG device)
	watch   []chan struct{}
	server  *grpc.Server
	stop    chan struct{}
	done    chan struct{}
	sock    string
}

// New returns a plugin for one resource and its devices, all healthy.
func New(r resources.Resource, dir string, links map[string][]string, log *slog.Logger) *Plugin {
	p := &Plugin{Resource: r.Name, Dir: dir, Links: links, Log: log, devices: r.Devices,
		byID: map[string]resources.Device{}, health: map[string]bool{}}
	for _, d := range r.Devices {
		p.byID[d.ID] = d
		p.health[resources.BaseID(d.ID)] = true
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	// A name of its own for each plugin: one replacing another for the same resource (a new
	// sharing config or MIG layout) registers before the kubelet has seen the old one go, and
	// the kubelet refuses a second plugin on a socket path it still holds.
	p.sock = fmt.Sprintf("outpost-%s-%s.sock", strings.NewReplacer("/", "-", ".", "-").Replace(p.Resource),
		strconv.FormatInt(time.Now().UnixNano(), 36))
	return p
}

// Socket is the plugin's endpoint file name in Dir.
func (p *Plugin) Socket() string { return p.sock }

// Start serves and registers, then keeps watching for kubelet restarts until Stop.
func (p *Plugin) Start(ctx context.Context) error {
	if err := p.serveAndRegister(ctx); err != nil {
		return err
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.watchKubelet()
	return nil
}

func (p *Plugin) serveAndRegister(ctx context.Context) error {
	// A starting kubelet empties the dir before it listens: a socket made before then is
	// removed under the plugin, and the kubelet cannot dial it back.
	if err := p.waitKubelet(ctx); err != nil {
		return err
	}
	sock := filepath.Join(p.Dir, p.Socket())
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("device plugin %s: listen: %w", p.Resource, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go srv.Serve(l)
	p.mu.Lock()
	p.server = srv
	p.mu.Unlock()
	if err := p.register(ctx); err != nil {
		srv.Stop()
		return err
	}
	p.Log.Info("registered with the kubelet", "resource", p.Resource, "devices", len(p.devices))
	return nil
}

func (p *Plugin) registerTimeout() time.Duration {
	if p.RegisterTimeout <= 0 {
		return time.Minute
	}
	return p.RegisterTimeout
}

// waitKubelet waits until the kubelet accepts connections: after a restart of the node,
// kubelet.sock is the last kubelet's until the new one replaces it, and refuses them meanwhile.
func (p *Plugin) waitKubelet(ctx context.Context) error {
	sock := filepath.Join(p.Dir, "kubelet.sock")
	deadline := time.Now().Add(p.registerTimeout())
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("device plugin %s: register with the kubelet: %s does not answer: %w", p.Resource, sock, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *Plugin) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.registerTimeout())
	defer cancel()
	conn, err := grpc.NewClient("unix://"+filepath.Join(p.Dir, "kubelet.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("device plugin %s: kubelet: %w", p.Resource, err)
	}
	defer conn.Close()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: p.Socket(), ResourceName: p.Resource,
		Options: &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true},
	}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("device plugin %s: register with the kubelet: %w", p.Resource, err)
	}
	return nil
}

// watchKubelet re-registers when the kubelet restarts: it recreates kubelet.sock and removes
// every plugin socket.
func (p *Plugin) watchKubelet() {
	defer close(p.done)
	last := inode(filepath.Join(p.Dir, "kubelet.sock"))
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(time.Second):
		}
		cur := inode(filepath.Join(p.Dir, "kubelet.sock"))
		_, sockErr := os.Stat(filepath.Join(p.Dir, p.Socket()))
		if cur == 0 || (cur == last && sockErr == nil) {
			continue
		}
		p.Log.Info("kubelet restarted; registering again", "resource", p.Resource)
		p.mu.Lock()
		if p.server != nil {
			p.server.Stop()
		}
		p.mu.Unlock()
		if err := p.serveAndRegister(context.Background()); err != nil {
			p.Log.Warn("re-register failed; will retry", "resource", p.Resource, "err", err)
			continue
		}
		last = cur
	}
}

func inode(path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// Stop ends serving.
func (p *Plugin) Stop() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		p.server.Stop()
		p.server = nil
	}
	_ = os.Remove(filepath.Join(p.Dir, p.Socket()))
}

// SetHealth marks a device (base ID: a GPU or MIG UUID) and all its replicas; it returns
// whether anything changed.
func (p *Plugin) SetHealth(baseID string, healthy bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.health[baseID]
	if !ok || cur == healthy {
		return false
	}
	p.health[baseID] = healthy
	for _, w := range p.watch {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	return true
}

// Healthy counts the healthy devices (replicas included): what the node can allocate.
func (p *Plugin) Healthy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, d := range p.devices {
		if p.health[resources.BaseID(d.ID)] {
			n++
		}
	}
	return n
}

func (p *Plugin) list() *pluginapi.ListAndWatchResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	resp := &pluginapi.ListAndWatchResponse{}
	for _, d := range p.devices {
		h := pluginapi.Healthy
		if !p.health[resources.BaseID(d.ID)] {
			h = pluginapi.Unhealthy
		}
		resp.Devices = append(resp.Devices, &pluginapi.Device{ID: d.ID, Health: h})
	}
	return resp
}

// GetDevicePluginOptions says the plugin answers GetPreferredAllocation.
func (p *Plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the device list, then again on every health change.
func (p *Plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.watch = append(p.watch, ch)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for i, w := range p.watch {
			if w == ch {
				p.watch = append(p.watch[:i], p.watch[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
	}()
	for {
		if err := s.Send(p.list()); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-s.Context().Done():
			return nil
		}
	}
}

// GetPreferredAllocation prefers NVLinked GPUs and distinct physical GPUs.
func (p *Plugin) GetPreferredAllocation(_ context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, c := range req.ContainerRequests {
		ids := allocate.Preferred(c.AvailableDeviceIDs, c.MustIncludeDeviceIDs, int(c.AllocationSize), p.byID, p.Links)
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate answers with CDI device names and NVIDIA_VISIBLE_DEVICES for each container.
func (p *Plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		var visible, cdi []string
		seen := map[string]bool{}
		for _, id := range c.DevicesIds {
			d, ok := p.byID[id]
			if !ok {
				return nil, fmt.Errorf("unknown device %q for %s", id, p.Resource)
			}
			if seen[d.Visible] {
				continue // two replicas of one GPU: one device
			}
			seen[d.Visible] = true
			visible = append(visible, d.Visible)
			cdi = append(cdi, d.CDIName)
		}
		sort.Strings(visible)
		cr := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(visible, ",")}}
		for _, n := range cdi {
			cr.CdiDevices = append(cr.CdiDevices, &pluginapi.CDIDevice{Name: n})
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cr)
	}
	return resp, nil
}

// PreStartContainer is not used.
func (p *Plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}
