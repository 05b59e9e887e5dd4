// Package metricsserver runs the upstream metrics-server (sigs.k8s.io/metrics-server) inside
// the server process, serving the metrics.k8s.io API that `kubectl top` and the
// HorizontalPodAutoscaler read. In-process it costs no image and runs on a server without an
// agent too: it listens on the node's address, and the apiserver (aggregator routing on)
// reaches it there through a selectorless Service whose EndpointSlice the deploy manifests
// write (manifests/metrics-server.yaml).
//
// It scrapes kubelets with verified certificates: the kubelet serving CA bundle, and a client
// certificate of its own (system:metrics-server), never --kubelet-insecure-tls.
package metricsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"sigs.k8s.io/metrics-server/cmd/metrics-server/app/options"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
)

// Port the metrics API listens on at the node's address (10250 is the kubelet's).
const Port = 10258

// Config is where the server finds its credentials.
type Config struct {
	BindIP     net.IP
	Port       int
	Kubeconfig string // the system:metrics-server identity, towards the apiserver
	// ServingCert and ServingKey: metrics-server.kube-system.svc from the server CA, which the
	// APIService pins.
	ServingCert, ServingKey string
	KubeletCA               string // what kubelet serving certificates chain to
	ClientCert, ClientKey   string // towards the kubelets
	// RequestHeaderCA and AllowedNames: the apiserver's aggregation proxy, which signs its
	// requests' identity headers; ClientCA: clients with certificates. Given as files, not
	// read from the extension-apiserver-authentication ConfigMap: until that lookup had
	// synced, a fresh metrics-server refused the proxy's first requests.
	RequestHeaderCA, ClientCA string
	AllowedNames              []string
	Resolution                time.Duration
	Log                       *slog.Logger
}

// MetricsServer is the component.
type MetricsServer struct {
	cfg  Config
	opts *options.Options

	stop     chan struct{}
	finished chan struct{}
	once     sync.Once
	running  bool // Start launched the server: Stop waits for it
}

var (
	_ component.Component = (*MetricsServer)(nil)
)

// New checks the settings; it starts nothing.
func New(c Config) (*MetricsServer, error) {
	if c.Resolution == 0 {
		c.Resolution = 15 * time.Second
	}
	if c.Port == 0 {
		c.Port = Port
	}
	o := options.NewOptions()
	o.Kubeconfig = c.Kubeconfig
	o.MetricResolution = c.Resolution
	o.SecureServing.BindAddress = c.BindIP
	o.SecureServing.BindPort = c.Port
	o.SecureServing.ServerCert.CertKey.CertFile = c.ServingCert
	o.SecureServing.ServerCert.CertKey.KeyFile = c.ServingKey
	o.Authentication.RemoteKubeConfigFile = c.Kubeconfig
	o.Authentication.ClientCert.ClientCA = c.ClientCA
	rh := &o.Authentication.RequestHeader
	rh.ClientCAFile, rh.AllowedNames = c.RequestHeaderCA, c.AllowedNames
	o.Authorization.RemoteKubeConfigFile = c.Kubeconfig
	k := o.KubeletClient
	k.KubeletCAFile, k.KubeletClientCertFile, k.KubeletClientKeyFile = c.KubeletCA, c.ClientCert, c.ClientKey
	// Kubelet serving certificates name the node's InternalIP (and its name, which needs DNS).
	k.KubeletPreferredAddressTypes = []string{"InternalIP", "ExternalIP", "Hostname"}
	k.KubeletUseNodeStatusPort = true
	k.KubeletRequestTimeout = c.Resolution / 2
	// Options.Validate would also apply its logging options to the process's klog: check
	// only what is the metrics-server's own.
	errs := k.Validate()
	errs = append(errs, o.GenericServerRunOptions.Validate()...)
	if c.Resolution < 10*time.Second {
		errs = append(errs, fmt.Errorf("metric resolution %s: at least 10s", c.Resolution))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics-server: %w", err)
	}
	return &MetricsServer{cfg: c, opts: o, stop: make(chan struct{}), finished: make(chan struct{})}, nil
}

func (m *MetricsServer) Name() string               { return "metrics-server" }
func (m *MetricsServer) Init(context.Context) error { return nil }

// Start runs the server until Stop, in the background. Its delegated authorization needs RBAC
// that deploy (in the same phase) may not have applied yet; and it is an add-on: whatever
// fails (its port taken, say), it is logged and tried again, never taking the control plane
// down with it.
func (m *MetricsServer) Start(context.Context) error {
	m.running = true
	go func() {
		defer close(m.finished)
		m.waitForRole()
		for attempt := 1; ; attempt++ {
			err := m.runOnce()
			select {
			case <-m.stop:
				return
			default:
			}
			// The first seconds' failures are the RBAC race; after that, say so every minute.
			if attempt == 15 || attempt%30 == 0 {
				m.cfg.Log.Warn("metrics-server not running; retrying", "attempts", attempt, "err", err)
			}
			select {
			case <-m.stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return nil
}

// waitForRole waits, until Stop, for the identity's role (the deploy manifests bring it, on
// a new cluster moments after this starts): its informers would log a forbidden list each.
func (m *MetricsServer) waitForRole() {
	client, err := kubeclient.New(m.cfg.Kubeconfig)
	if err != nil {
		return // runOnce says why
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	_ = kubeclient.WaitAllowed(ctx, client, m.cfg.Log, time.Second/2, append(kubeclient.List("", "nodes"), kubeclient.List("", "pods")...)...)
}

// runOnce builds the server and runs it until Stop or an error.
func (m *MetricsServer) runOnce() error {
	cfg, err := m.opts.ServerConfig()
	if err != nil {
		return err
	}
	cfg.Apiserver.OpenAPIConfig.GetDefinitions = canonicalNames(cfg.Apiserver.OpenAPIConfig.GetDefinitions)
	v3 := cfg.Apiserver.OpenAPIV3Config
	v3.GetDefinitions = canonicalNames(v3.GetDefinitions)
	if v3.Definitions != nil {
		v3.Definitions = addCanonical(v3.Definitions)
	}
	srv, err := cfg.Complete()
	if err != nil {
		return err // the listener stays open in the options and is used again
	}
	err = srv.RunUntil(m.stop)
	// A server that ran closed its listener: the next attempt binds afresh.
	if l := m.opts.SecureServing.Listener; l != nil {
		_ = l.Close()
		m.opts.SecureServing.Listener = nil
	}
	if err == nil {
		err = errors.New("stopped on its own")
	}
	return err
}

func (m *MetricsServer) Stop(ctx context.Context) error {
	m.once.Do(func() { close(m.stop) })
	if !m.running {
		return nil
	}
	select {
	case <-m.finished:
	case <-ctx.Done():
	}
	return nil
}

// canonicalNames also files every definition under its REST-friendly name. metrics-server's
// generated OpenAPI keys its models by Go path (k8s.io/metrics/...NodeMetrics), while the
// Kubernetes types it serves now name their models themselves (io.k8s.metrics...NodeMetrics)
// and the apiserver library looks them up by that name.
func canonicalNames(get common.GetOpenAPIDefinitions) common.GetOpenAPIDefinitions {
	return func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
		return addCanonical(get(ref))
	}
}

func addCanonical(defs map[string]common.OpenAPIDefinition) map[string]common.OpenAPIDefinition {
	out := make(map[string]common.OpenAPIDefinition, 2*len(defs))
	for k, v := range defs {
		out[k] = v
	}
	for k, v := range defs {
		if n := util.ToRESTFriendlyName(k); n != k {
			if _, ok := out[n]; !ok {
				out[n] = v
			}
		}
	}
	return out
}
