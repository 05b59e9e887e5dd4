// Package cni writes the node's CNI network config (bridge + host-local + portmap + loopback
// from the bundled plugins) once the node has been given its PodCIDR.
package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// ConfFile is the conflist's name in the CNI conf dir.
const ConfFile = "10-outpost.conflist"

// BridgeName is the host bridge the pods of this node attach to.
const BridgeName = "outpost0"

// Config is the CNI slice of the node config.
type Config struct {
	ConfDir  string
	IPAMDir  string // host-local's allocations; kept across restarts so pod IPs stay unique
	NodeName string
	MTU      int
	// ExternalMasq: flannel masquerades traffic leaving the cluster network, so the bridge must
	// not (it would hide pod source addresses from pods on other nodes).
	ExternalMasq bool
}

// Render returns the conflist for one node's pod subnets.
func Render(c Config, podCIDRs []string) ([]byte, error) {
	var ranges [][]map[string]string
	routes := []map[string]string{}
	for _, s := range podCIDRs {
		ip, _, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("node podCIDR %q: %w", s, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": s}})
		if ip.To4() != nil {
			routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
		} else {
			routes = append(routes, map[string]string{"dst": "::/0"})
		}
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("node has no podCIDR")
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": BridgeName, "isGateway": true, "ipMasq": !c.ExternalMasq,
		"hairpinMode": true, "forceAddress": true,
		"ipam": map[string]any{"type": "host-local", "ranges": ranges, "routes": routes, "dataDir": c.IPAMDir},
	}
	if c.MTU > 0 {
		bridge["mtu"] = c.MTU
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "outpost",
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// CNI is the component: it waits for the node's PodCIDR and writes the conflist.
type CNI struct {
	cfg    Config
	client kubernetes.Interface
	done   chan struct{}
	err    error
}

// New returns the component.
func New(c Config, client kubernetes.Interface) *CNI {
	return &CNI{cfg: c, client: client, done: make(chan struct{})}
}

func (w *CNI) Name() string { return "cni" }

func (w *CNI) Init(context.Context) error {
	for _, d := range []string{w.cfg.ConfDir, w.cfg.IPAMDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// Start polls the Node object in the background until it has a PodCIDR.
func (w *CNI) Start(ctx context.Context) error {
	go func() {
		defer close(w.done)
		w.err = w.wait(context.WithoutCancel(ctx))
	}()
	return nil
}

func (w *CNI) wait(ctx context.Context) error {
	for {
		n, err := w.client.CoreV1().Nodes().Get(ctx, w.cfg.NodeName, metav1.GetOptions{})
		if err == nil && len(n.Spec.PodCIDRs) > 0 {
			return w.Write(n.Spec.PodCIDRs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // only until the PodCIDR is in: node Ready waits on it
		}
	}
}

// Write renders and atomically writes the conflist.
func (w *CNI) Write(podCIDRs []string) error {
	b, err := Render(w.cfg, podCIDRs)
	if err != nil {
		return err
	}
	return pki.WriteFile(filepath.Join(w.cfg.ConfDir, ConfFile), b, 0o644)
}

// Ready waits for the conflist.
func (w *CNI) Ready(context.Context) error {
	select {
	case <-w.done:
		return w.err
	default:
		return fmt.Errorf("waiting for node %s to get a PodCIDR", w.cfg.NodeName)
	}
}

func (w *CNI) Stop(context.Context) error { return nil }

// Config is what the CNI writer was given.
func (w *CNI) Config() Config { return w.cfg }

var _ component.Component = (*CNI)(nil)
