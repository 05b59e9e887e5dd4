// Package layer is the node's GPU layer: it detects the GPUs, writes the CDI spec, tells
// containerd about the NVIDIA runtimes, then (once the kubelet runs) serves the device plugins,
// keeps the Node's GPU labels and GPUHealthy condition current, and serves GPU metrics.
package layer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/gpu/cdi"
	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/deviceplugin"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/labels"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
	migspec "github.com/outpostk8s/outpost/pkg/spec/mig"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

// Config is the GPU layer's slice of the node config.
type Config struct {
	NodeName   string
	Strategy   resources.Strategy
	Replicas   int
	DriverRoot string
	DevRoot    string
	CDIDir     string
	// HelperPath is the GPU helper, which runs the CDI spec's hooks as nvidia-cdi-hook.
	HelperPath     string
	DefaultRuntime string
	MetricsPort    int
	NodeIP         net.IP // metrics listen here and on loopback; nil: loopback only
	// MetricsAnonymous serves the metrics to anyone over plain HTTP, as dcgm-exporter does;
	// else over HTTPS with MetricsTLS, to callers the apiserver authenticates (the client's
	// TokenReview, or a certificate of MetricsTLS's client CA) and allows to get /metrics.
	MetricsAnonymous bool
	MetricsTLS       metrics.TLSFiles
	PluginDir        string // the kubelet's device-plugins dir
	HealthQuiet      time.Duration
	PathEnv          string
	Hostname         string
	// MachineFile holds the host's model for the nvidia.com/gpu.machine label (DMI's
	// product_name); "" or unreadable: no label.
	MachineFile string
	// PodResourcesSocket is the kubelet's PodResources API, which names the pods holding each
	// GPU in the metrics; "" leaves the names out.
	PodResourcesSocket string
	// Sharing is the time-slicing configs the node may pick by its nvidia.com/device-plugin.config
	// label; nil: Replicas for every resource.
	Sharing *sharing.Set
	// MIGConfig names the MIG layout the GPUs must have unless the node's nvidia.com/mig.config
	// label names another; MIGLayouts are the custom layouts. "" and no label: MIG is left as it is.
	MIGConfig  string
	MIGLayouts *migspec.File
}

// Layer is the component. Prepare runs before containerd is configured.
type Layer struct {
	cfg      Config
	lib      gpulib.Lib
	log      *slog.Logger
	client   kubernetes.Interface
	Node     *detect.Node
	Res      []resources.Resource
	Runtimes []gpuruntime.Runtime

	// mu guards the plugins, Res and the sharing config, which a label change replaces.
	mu          sync.Mutex
	plugins     []*deviceplugin.Plugin
	sharingName string          // the label value applied ("" the default)
	sharingCfg  *sharing.Config // nil: no config, Replicas everywhere
	refused     string          // a label value whose config was refused, reported once
	monitor     *health.Monitor
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	srv         *http.Server
	nvmlUp      bool
	mig         migStatus // the declared MIG layout and how applying it went
	st          *status   // the node's conditions, labels and events; set by Start
	// vmu guards validations, each device's last check (apart from mu: a check runs for
	// seconds, and a failure reaches setHealth, which takes mu).
	vmu         sync.Mutex
	validations map[string]gpulib.Validation
	vdirty      bool // a check changed what the GPUValidated condition says
	// podHolders, when set, stands in for the kubelet's PodResources API (tests).
	podHolders func(context.Context) (map[string][]podresources.Holder, error)
}

// Plan is what Check found: the node's GPUs (nil without an NVIDIA driver), the resources
// they advertise and the NVIDIA runtimes. A start detects once, in its check step, and builds
// the GPU layer from the plan.
type Plan struct {
	Node     *detect.Node
	Res      []resources.Resource
	Runtimes []gpuruntime.Runtime
}

// Check detects the GPUs and runtimes and checks the settings against them, writing nothing:
// the server runs it before it touches its data dir, so a setting the hardware cannot honour
// stops the start with nothing half-set-up. Plan.Node is nil when there is no NVIDIA driver.
func Check(cfg Config, lib gpulib.Lib) (*Plan, error) {
	p := &Plan{Runtimes: gpuruntime.Find("/", cfg.PathEnv)}
	if err := gpuruntime.Default(cfg.DefaultRuntime, p.Runtimes); err != nil {
		return nil, err
	}
	node, err := lib.Detect()
	if errors.Is(err, detect.ErrNoDriver) {
		return p, nil
	} else if err != nil {
		return nil, fmt.Errorf("GPU detection: %w", err)
	}
	if b, err := os.ReadFile(cfg.MachineFile); cfg.MachineFile != "" && err == nil {
		node.Machine = strings.TrimSpace(string(b))
	}
	if cfg.MIGConfig != "" {
		if _, err := mig.Resolve(cfg.MIGConfig, cfg.MIGLayouts, node); err != nil {
			return nil, fmt.Errorf("--gpu-mig-config: %w", err)
		}
	}
	def, _ := cfg.Sharing.Pick("")
	st := strategy(cfg.Strategy, cfg.MIGConfig != "", node)
	if p.Res, err = resources.Build(node, resources.Config{Strategy: st, Replicas: cfg.Replicas, Sharing: def}); err != nil {
		return nil, err
	}
	if err := cdi.CheckDeviceNodes(node, cfg.DevRoot); err != nil {
		return nil, err
	}
	p.Node = node
	return p, nil
}

var _ component.Component = (*Layer)(nil)

// New builds the GPU layer from what Check found (plan); lib answers its NVML calls from then
// on. CDISpec writes the spec. It returns (nil, nil) when the node has neither an NVIDIA
// driver nor an NVIDIA runtime: no GPU features, no error.
func New(cfg Config, plan *Plan, lib gpulib.Lib, client kubernetes.Interface, log *slog.Logger) (*Layer, error) {
	node, res, runtimes := plan.Node, plan.Res, plan.Runtimes
	if node == nil {
		log.Info("no NVIDIA driver found: GPU support off")
		if len(runtimes) > 0 {
			return &Layer{cfg: cfg, log: log, client: client, Runtimes: runtimes}, nil // runtimes still usable
		}
		return nil, nil
	}
	log.Info("GPUs found", "count", len(node.GPUs), "product", firstProduct(node), "driver", node.DriverVersion,
		"resources", resourceSummary(res), "runtimes", len(runtimes))
	def, _ := cfg.Sharing.Pick("")
	return &Layer{cfg: cfg, lib: lib, log: log, client: client, Node: node, Res: res, Runtimes: runtimes, sharingCfg: def}, nil
}

// Config is what the agent was given.
func (a *Layer) Config() Config { return a.cfg }

func firstProduct(n *detect.Node) string {
	if len(n.GPUs) == 0 {
		return ""
	}
	return n.GPUs[0].Product
}

func resourceSummary(rs []resources.Resource) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s=%d", r.Name, len(r.Devices)))
	}
	return strings.Join(parts, ",")
}

func (a *Layer) Name() string               { return "gpu" }
func (a *Layer) Init(context.Context) error { return nil }

// CDISpec is the agent's first part: a component that writes the CDI spec for the node's GPUs
// in its Init, to run before containerd and the kubelet (after a reboot /var/run/cdi is empty,
// and pods the kubelet restarts need the spec at once).
func (a *Layer) CDISpec() component.Component { return &cdiSpec{a: a} }

type cdiSpec struct{ a *Layer }

func (c *cdiSpec) Name() string                { return "gpu-cdi" }
func (c *cdiSpec) Start(context.Context) error { return nil }
func (c *cdiSpec) Stop(context.Context) error  { return nil }

func (c *cdiSpec) Init(context.Context) error {
	if c.a.Node == nil {
		return nil
	}
	return c.a.writeSpec()
}

// writeSpec has the helper generate the CDI spec for the GPUs as they are now and writes it.
// What the generator could not find (a driver install without graphics or X11 files, say) is
// counted at INFO and listed at DEBUG: a compute node lacks most of it by design.
func (a *Layer) writeSpec() error {
	s, err := a.lib.CDISpec(gpulib.CDIOptions{DriverRoot: a.cfg.DriverRoot, DevRoot: a.cfg.DevRoot, HookPath: a.cfg.HelperPath})
	if err != nil {
		return fmt.Errorf("CDI spec: %w", err)
	}
	for _, w := range s.Warnings {
		a.log.Debug("CDI spec generator", "warning", w)
	}
	if len(s.YAML) == 0 {
		// Every GPU in MIG mode with no MIG device yet (MIG instances do not survive a
		// reboot): nothing to hand out until a layout makes some, and no stale spec either.
		if err := cdi.Remove(a.cfg.CDIDir); err != nil {
			return fmt.Errorf("CDI spec: %w", err)
		}
		a.log.Info("no GPU or MIG device to put in the CDI spec yet")
		return nil
	}
	p, err := cdi.Write(s.YAML, a.cfg.CDIDir)
	if err != nil {
		return fmt.Errorf("CDI spec: %w", err)
	}
	a.log.Info("CDI spec written", "path", p, "bytes", len(s.YAML), "generator-warnings", len(s.Warnings))
	return nil
}

// Start serves the plugins (once the kubelet's socket exists), labels the node, and watches
// health and serves metrics in the background. A node with runtimes and no GPU gets only
// their labels.
func (a *Layer) Start(ctx context.Context) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	st := &status{client: a.client, node: a.cfg.NodeName, log: a.log}
	if a.Node == nil {
		runtimes := labels.Runtimes(a.Runtimes)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			st.keepLabels(rctx, func(map[string]string) map[string]string { return runtimes })
		}()
		return nil
	}
	// Detect shut NVML down again; the plugins' health, the events and the metrics need it up
	// for as long as the agent runs.
	if err := a.lib.Open(); err != nil {
		return fmt.Errorf("GPU library: %w", err)
	}
	a.nvmlUp = true
	if err := waitFile(ctx, filepath.Join(a.cfg.PluginDir, "kubelet.sock"), time.Minute); err != nil {
		return fmt.Errorf("kubelet device-plugin socket: %w", err)
	}
	a.monitor = health.NewMonitor(a.probe(rctx), a.cfg.HealthQuiet, func(c health.Change) {
		a.setHealth(c)
		// The condition and Event retry until the API server takes them: not in the way of
		// the start (a device failing its check) or of the health watch.
		a.wg.Add(1)
		go func() { defer a.wg.Done(); st.report(rctx, c, a.monitor.Unhealthy(), true) }()
	})
	a.st = st
	// A device is handed out only once it ran a kernel: the plugins start with the failed
	// ones unhealthy.
	a.validate(ctx, DeviceIDs(a.Node))
	a.initialLabels(ctx)
	a.mu.Lock()
	err := a.startPlugins(ctx, a.Res)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	a.wg.Add(3)
	go func() { defer a.wg.Done(); st.report(rctx, health.Change{Healthy: true}, nil, false) }()
	go func() {
		defer a.wg.Done()
		st.keepLabels(rctx, func(cur map[string]string) map[string]string {
			a.applyMIG(rctx, st, cur[mig.ConfigLabel])
			a.applySharing(rctx, st, cur[sharing.ConfigLabel])
			a.flushValidation(rctx)
			return a.labels()
		})
	}()
	go func() { defer a.wg.Done(); a.watchHealth(rctx) }()
	if a.cfg.MetricsPort > 0 {
		if err := a.serveMetrics(rctx); err != nil {
			return err
		}
	}
	return nil
}

// serveMetrics serves /metrics until ctx ends or Stop; unless anonymous, behind TLS and the
// apiserver's TokenReview and SubjectAccessReview, asked as the node.
func (a *Layer) serveMetrics(ctx context.Context) error {
	var tlsCfg *tls.Config
	var guard metrics.Guard
	if !a.cfg.MetricsAnonymous {
		var err error
		if tlsCfg, guard, err = metrics.Secure(ctx, a.cfg.MetricsTLS, a.client, a.log); err != nil {
			return err
		}
	}
	ls, err := listenMetrics(a.cfg.NodeIP, a.cfg.MetricsPort)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	src := metrics.Source{Lib: a.lib, Hostname: a.cfg.Hostname, XIDs: a.monitor.XIDs, LastXID: a.monitor.LastXID}
	if a.cfg.PodResourcesSocket != "" {
		src.Holders = func() (map[string][]podresources.Holder, error) {
			pr := podresources.Client{Socket: a.cfg.PodResourcesSocket, Devices: a.deviceGPUs()}
			return pr.Holders(context.Background())
		}
	}
	h := src.Handler()
	if tlsCfg != nil {
		h = guard.Wrap(h)
	}
	mux.Handle("/metrics", h)
	// A failed TLS handshake (a scanner, a plain-HTTP client) is the caller's problem: debug.
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
	for _, l := range ls {
		if tlsCfg != nil {
			l = tls.NewListener(l, tlsCfg)
		}
		go a.srv.Serve(l)
	}
	return nil
}

// deviceGPUs maps each advertised device ID to what the metrics name its holders on: a
// time-slicing replica to its GPU's UUID, a MIG device (or its replica) to its MIG ID.
func (a *Layer) deviceGPUs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	uuids := map[int]string{}
	for _, g := range a.Node.GPUs {
		uuids[g.Index] = g.UUID
	}
	m := map[string]string{}
	for _, r := range a.Res {
		for _, d := range r.Devices {
			m[d.ID] = uuids[d.GPUIndex]
			if strings.HasPrefix(d.Visible, "MIG-") {
				m[d.ID] = d.Visible
			}
		}
	}
	return m
}

// metricsAddrs are where the metrics port listens: the node IP, for a Prometheus elsewhere in
// the cluster, and loopback. Not every interface: a public one would hand GPU details to
// anyone who asks.
func metricsAddrs(nodeIP net.IP, port int) []string {
	addrs := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if nodeIP != nil && !nodeIP.IsLoopback() && !nodeIP.IsUnspecified() {
		addrs = append(addrs, net.JoinHostPort(nodeIP.String(), strconv.Itoa(port)))
	}
	return addrs
}

// listenMetrics opens every metrics address, or none.
func listenMetrics(nodeIP net.IP, port int) ([]net.Listener, error) {
	var ls []net.Listener
	for _, addr := range metricsAddrs(nodeIP, port) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("GPU metrics port %d is in use: set --gpu-metrics-port (0 turns it off): %w", port, err)
			}
			return nil, fmt.Errorf("GPU metrics cannot listen on %s: check --node-ip, or set --gpu-metrics-port 0 to turn metrics off: %w", addr, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// setHealth tells every plugin holding the GPU (or its MIG devices).
func (a *Layer) setHealth(c health.Change) {
	a.mu.Lock()
	a.markHealth(c)
	a.mu.Unlock()
	if c.Healthy {
		a.log.Info("GPU healthy again", "reason", c.Reason)
	} else {
		a.log.Warn("GPU unhealthy: removed from allocatable", "reason", c.Reason)
	}
}

// markHealth is setHealth's part under a.mu.
func (a *Layer) markHealth(c health.Change) {
	for _, p := range a.plugins {
		for _, r := range a.Res {
			if r.Name != p.Resource {
				continue
			}
			for _, d := range r.Devices {
				if d.Visible == c.UUID || strings.Contains(d.Visible, c.UUID) {
					p.SetHealth(resources.BaseID(d.ID), c.Healthy)
				}
			}
		}
	}
}

// watchHealth feeds NVML's events to the monitor. A failing read (the GPU helper died and is
// restarted at the next call) is logged once and retried every few seconds, not every loop.
func (a *Layer) watchHealth(ctx context.Context) {
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	failing := false
	for ctx.Err() == nil {
		e, ok, err := a.lib.NextEvent(500 * time.Millisecond)
		switch {
		case errors.Is(err, gpulib.ErrNoEvents):
			a.log.Warn("GPU health is not watched", "err", err)
			return
		case err != nil:
			if !failing {
				a.log.Warn("GPU events unreadable; retrying", "err", err)
				failing = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		case failing:
			a.log.Info("GPU events readable again")
			failing = false
		}
		if ok {
			a.monitor.Handle(e)
		}
		select {
		case <-recheck.C:
			a.monitor.Recheck()
		default:
		}
	}
}

// stopPlugins stops every plugin; the caller holds a.mu.
func (a *Layer) stopPlugins() {
	for _, p := range a.plugins {
		p.Stop()
	}
	a.plugins = nil
}

// Stop ends everything the agent runs.
func (a *Layer) Stop(ctx context.Context) error {
	if a.cancel != nil {
		a.cancel()
	}
	if a.srv != nil {
		_ = a.srv.Shutdown(ctx)
	}
	a.wg.Wait()
	a.mu.Lock()
	a.stopPlugins()
	a.mu.Unlock()
	if a.nvmlUp {
		if err := a.lib.Close(); err != nil {
			a.log.Warn("GPU library close", "err", err)
		}
		a.nvmlUp = false
	}
	return nil
}

func waitFile(ctx context.Context, p string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", p, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
