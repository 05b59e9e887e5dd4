// Package flannel runs flannel in-process as the pod network between nodes: the kube subnet
// manager reads each node's PodCIDR, the vxlan (default) or host-gw backend routes the other
// nodes' PodCIDRs, and flannel's iptables rules forward and masquerade pod traffic. Pods plug
// into the node's bridge (pkg/node/cni); flannel only links the bridges.
package flannel

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw" // registers host-gw
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"  // registers vxlan
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Overhead is what the backend's encapsulation takes from the interface MTU.
func Overhead(backendType string) int {
	if backendType == "vxlan" {
		return 50
	}
	return 0
}

// Config is flannel's slice of the node config.
type Config struct {
	NodeName    string
	NodeIP      net.IP
	Iface       string // --flannel-iface; default: the interface holding NodeIP
	Backend     string
	ClusterCIDR string
	Kubeconfig  string // the node's own identity: it may read nodes and annotate its own
	Dir         string // where the net-conf is written
	Log         *slog.Logger
}

// Flannel runs flannel: the pod network between nodes.
type Flannel struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ component.Component = (*Flannel)(nil)

// New returns the component.
func New(c Config) *Flannel { return &Flannel{cfg: c} }

func (f *Flannel) Name() string               { return "flannel" }
func (f *Flannel) Init(context.Context) error { return nil }

// Interface finds the node's interface: the named one, or the one holding ip.
func Interface(name string, nodeIP net.IP) (*net.Interface, net.IP, error) {
	if name != "" {
		i, err := net.InterfaceByName(name)
		if err != nil {
			return nil, nil, fmt.Errorf("--flannel-iface %s: %w", name, err)
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return i, n.IP, nil
			}
		}
		return nil, nil, fmt.Errorf("--flannel-iface %s has no IPv4 address", name)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	for i := range ifs {
		addrs, _ := ifs[i].Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(nodeIP) {
				return &ifs[i], nodeIP, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("no interface holds the node IP %s: set --flannel-iface", nodeIP)
}

// Start registers the network in the background: flannel needs the node's PodCIDR, which
// the controller-manager assigns once the kubelet has registered the node.
func (f *Flannel) Start(ctx context.Context) error {
	c := f.cfg
	iface, addr, err := Interface(c.Iface, c.NodeIP)
	if err != nil {
		return err
	}
	conf := filepath.Join(c.Dir, "net-conf.json")
	b, _ := json.Marshal(map[string]any{"Network": c.ClusterCIDR, "EnableIPv4": true, "Backend": map[string]string{"Type": c.Backend}})
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for rctx.Err() == nil {
			err := f.run(rctx, conf, &backend.ExternalInterface{Iface: iface, IfaceAddr: addr, ExtAddr: addr})
			if rctx.Err() != nil {
				return
			}
			c.Log.Info("flannel not up yet; retrying", "err", err)
			select {
			case <-rctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return nil
}

func (f *Flannel) run(ctx context.Context, conf string, ext *backend.ExternalInterface) error {
	c := f.cfg
	// The kube subnet manager finds its node by the NODE_NAME variable, which the command
	// sets for the whole process (its only public constructor reads nothing else).
	if os.Getenv("NODE_NAME") != c.NodeName {
		return fmt.Errorf("NODE_NAME is %q, not this node's %q: the command sets it before starting the node", os.Getenv("NODE_NAME"), c.NodeName)
	}
	sm, err := kube.NewSubnetManager(ctx, "", c.Kubeconfig, "flannel.alpha.coreos.com", conf, false)
	if err != nil {
		return fmt.Errorf("subnet manager: %w", err)
	}
	nc, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	be, err := backend.NewManager(ctx, sm, ext).GetBackend(nc.BackendType)
	if err != nil {
		return fmt.Errorf("backend %s: %w", nc.BackendType, err)
	}
	bn, err := be.RegisterNetwork(ctx, &f.wg, nc)
	if err != nil {
		return fmt.Errorf("register network: %w", err)
	}
	tm := &iptables.IPTablesManager{}
	if err := tm.Init(ctx); err != nil {
		return err
	}
	if err := tm.SetupAndEnsureMasqRules(ctx, nc.Network, ip.IP4Net{}, ip.IP4Net{}, ip.IP6Net{}, ip.IP6Net{}, ip.IP6Net{},
		bn.Lease(), 60, false); err != nil {
		return fmt.Errorf("masquerade rules: %w", err)
	}
	tm.SetupAndEnsureForwardRules(ctx, nc.Network, ip.IP6Net{}, 60)
	c.Log.Info("pod network up", "backend", nc.BackendType, "subnet", bn.Lease().Subnet.String(), "mtu", bn.MTU(), "iface", ext.Iface.Name)
	bn.Run(ctx) // blocks until ctx ends
	return nil
}

// Stop ends flannel; its routes and rules stay until the node restarts it (pods keep their
// network meanwhile).
func (f *Flannel) Stop(context.Context) error {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
}

// Config is what flannel was given.
func (f *Flannel) Config() Config { return f.cfg }
