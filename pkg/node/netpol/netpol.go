// Package netpol enforces NetworkPolicies on this node with kube-router's policy controller
// (iptables and ipset), run in-process as k3s does. Only the policy controller is linked: the
// router, BGP and service proxy packages of kube-router stay out (see the import test).
//
// The rules stay when the process stops: pods outlive it by design, and a policy that let
// nothing in must keep letting nothing in until the next start (or the uninstaller) takes
// over. A node started with NetworkPolicy off removes what an earlier run left (Cleaner).
package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/logging"
)

// Tools are the host programs the policy controller runs.
func Tools() []string { return []string{"ipset", "iptables-save", "iptables-restore"} }

// Config is the policy controller's slice of the node config.
type Config struct {
	NodeName    string
	ServiceCIDR *net.IPNet
	// Client reads pods, namespaces and NetworkPolicies cluster-wide (the node identity with
	// the outpost:network-policy role) and this node's Node.
	Client   kubernetes.Interface
	LookPath func(string) (string, error) // exec.LookPath on a real machine
	// SyncPeriod is the full resync beside the event-driven ones; 0: five minutes.
	SyncPeriod time.Duration
	// First are jumps kept at the top of kube-router's chains (FirstJumps), checked every
	// FirstInterval (0: five seconds) through IPT (nil: the host's, by the CIDR's family).
	First         []Jump
	FirstInterval time.Duration
	IPT           utiliptables.Interface
	Log           *slog.Logger
	// Guard routes kube-router's klog.Fatal calls (an iptables call that failed) here:
	// the controller is built again after RestartDelay (0: five seconds). nil: not routed.
	Guard        *logging.Guard
	RestartDelay time.Duration
}

// Controller runs kube-router's NetworkPolicy controller.
type Controller struct {
	cfg     Config
	stop    chan struct{}
	wg      sync.WaitGroup
	synced  chan struct{} // closed at the first full sync
	once    sync.Once
	lastErr atomic.Pointer[error] // the informers' last list or watch error
	failing atomic.Pointer[error] // why the controller restarted, until its next full sync
	failed  chan string           // kube-router's Fatal messages (Config.Guard)
}

var _ component.Component = (*Controller)(nil)
var _ component.Readier = (*Controller)(nil)

// New returns the component; it starts nothing.
func New(c Config) *Controller {
	return &Controller{cfg: c, synced: make(chan struct{}), failed: make(chan string, 1)}
}

func (c *Controller) Name() string { return "network-policy" }

// Init refuses a host without the tools: policies the user wrote would silently not hold.
func (c *Controller) Init(context.Context) error {
	if c.cfg.ServiceCIDR == nil || c.cfg.Client == nil {
		return fmt.Errorf("network policy: incomplete config")
	}
	return missingTools(c.cfg.LookPath)
}

func missingTools(look func(string) (string, error)) error {
	for _, t := range Tools() {
		if _, err := look(t); err != nil {
			return fmt.Errorf("NetworkPolicy needs %s on PATH: install it (apt-get install ipset iptables) or start the server with --disable-network-policy", t)
		}
	}
	return nil
}

// krConfig is kube-router's config for the policy controller alone, single-stack.
func (c *Controller) krConfig() *options.KubeRouterConfig {
	kr := options.NewKubeRouterConfig()
	kr.ClusterIPCIDRs = []string{c.cfg.ServiceCIDR.String()}
	v6 := c.cfg.ServiceCIDR.IP.To4() == nil
	kr.EnableIPv4, kr.EnableIPv6 = !v6, v6
	kr.HostnameOverride = c.cfg.NodeName
	kr.RunFirewall, kr.RunRouter, kr.RunServiceProxy = true, false, false
	// Its metrics register on a process-wide registry that panics on a second registration.
	kr.MetricsEnabled = false
	if c.cfg.SyncPeriod > 0 {
		kr.IPTablesSyncPeriod = c.cfg.SyncPeriod
	}
	return kr
}

// Start runs the controller in the background: it is built once this node's Node exists
// (the kubelet registers it about now) and runs once the caches fill, which needs the
// outpost:network-policy role the server applies at start. Ready reports the first full sync.
func (c *Controller) Start(context.Context) error {
	c.stop = make(chan struct{})
	// kube-router reports each full sync on this channel and blocks until it is read.
	health := make(chan *healthcheck.ControllerHeartbeat, 1)
	ipt := c.cfg.IPT
	if ipt == nil {
		proto := utiliptables.ProtocolIPv4
		if c.cfg.ServiceCIDR.IP.To4() == nil {
			proto = utiliptables.ProtocolIPv6
		}
		ipt = utiliptables.New(proto)
	}
	every := c.cfg.FirstInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if err := ensureFirst(ipt, c.cfg.First); err != nil {
				c.cfg.Log.Warn("rules before the policy accept", "err", err)
			}
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.stop:
				return
			case <-health:
				c.once.Do(func() {
					close(c.synced)
					c.cfg.Log.Info("NetworkPolicies enforced on this node")
				})
				if c.failing.Swap(nil) != nil {
					c.cfg.Log.Info("NetworkPolicies enforced again after the policy controller's restart")
				}
			}
		}
	}()
	if c.cfg.Guard != nil {
		c.cfg.Guard.Handle(c.Name(), c.fail)
	}
	go func() {
		defer c.wg.Done()
		base := c.cfg.RestartDelay
		if base <= 0 {
			base = 5 * time.Second
		}
		delay := base
		for c.runOnce(health) {
			select {
			case <-c.stop:
				return
			case <-time.After(delay):
			}
			// Doubling while it keeps failing before a full sync (each try lists every pod,
			// namespace and policy again), back to the base once one succeeded.
			if c.failing.Load() != nil {
				delay = min(2*delay, 5*time.Minute)
			} else {
				delay = base
			}
		}
	}()
	return nil
}

// fail hears kube-router's klog.Fatal, in the goroutine that is about to end.
func (c *Controller) fail(msg string) {
	select {
	case c.failed <- msg:
	default: // one restart is pending already
	}
}

// runOnce builds kube-router's controller and runs it until the stop (false) or until a
// Fatal of its ended part of it (true: build it again). An iptables call can fail for a
// moment (the xtables lock held past its wait): the next controller tries again.
func (c *Controller) runOnce(health chan<- *healthcheck.ControllerHeartbeat) bool {
	npc, factory, ok := c.buildWhenNodeExists()
	if !ok {
		return false
	}
	run := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(run); wg.Wait(); factory.Shutdown() }()
	factory.Start(run)
	synced := make(chan bool, 1)
	go func() {
		for typ, ok := range factory.WaitForCacheSync(run) {
			if !ok {
				c.cfg.Log.Debug("informer stopped before it synced", "type", typ)
				synced <- false
				return
			}
		}
		synced <- true
	}()
	select {
	case <-c.stop:
		return false
	case ok := <-synced:
		if !ok {
			return false
		}
	}
	wg.Add(1)
	go npc.Run(health, run, &wg)
	select {
	case <-c.stop:
		return false
	case msg := <-c.failed:
		err := fmt.Errorf("the policy controller stopped on an error, restarting it: %s", msg)
		c.failing.Store(&err)
		c.cfg.Log.Warn("the policy controller stopped on an error: starting it again", "err", msg)
		return true
	}
}

// buildWhenNodeExists retries the build (which reads this node's Node) until stopped.
func (c *Controller) buildWhenNodeExists() (*netpol.NetworkPolicyController, informers.SharedInformerFactory, bool) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		npc, factory, err := c.build()
		if err == nil {
			return npc, factory, true
		}
		c.lastErr.Store(&err)
		select {
		case <-c.stop:
			return nil, nil, false
		case <-t.C:
		}
	}
}

func (c *Controller) build() (*netpol.NetworkPolicyController, informers.SharedInformerFactory, error) {
	kr := c.krConfig()
	factory := informers.NewSharedInformerFactory(c.cfg.Client, 0)
	pods := factory.Core().V1().Pods().Informer()
	nss := factory.Core().V1().Namespaces().Informer()
	nps := factory.Networking().V1().NetworkPolicies().Informer()
	// Why the caches do not fill (RBAC not yet applied, server down) is what Ready reports.
	for _, inf := range []cache.SharedIndexInformer{pods, nss, nps} {
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { c.lastErr.Store(&err) })
	}
	ipt, ipsets, err := netpol.NewIPTablesHandlers(kr)
	if err != nil {
		return nil, nil, fmt.Errorf("network policy: %w", err)
	}
	npc, err := netpol.NewNetworkPolicyController(c.cfg.Client, kr, pods, nps, nss, &sync.Mutex{}, ipt, ipsets)
	if err != nil {
		return nil, nil, fmt.Errorf("network policy controller: %w", err)
	}
	if _, err := pods.AddEventHandler(npc.PodEventHandler); err != nil {
		return nil, nil, err
	}
	if _, err := nss.AddEventHandler(npc.NamespaceEventHandler); err != nil {
		return nil, nil, err
	}
	if _, err := nps.AddEventHandler(npc.NetworkPolicyEventHandler); err != nil {
		return nil, nil, err
	}
	return npc, factory, nil
}

// Ready is the first full sync: from then on every policy in the cluster holds here.
func (c *Controller) Ready(context.Context) error {
	select {
	case <-c.synced:
		if e := c.failing.Load(); e != nil { // health, after the start: policies may not hold
			return *e
		}
		return nil
	default:
		if e := c.lastErr.Load(); e != nil {
			return fmt.Errorf("network policy: no full sync yet: %w", *e)
		}
		return errors.New("network policy: no full sync yet")
	}
}

func (c *Controller) Stop(context.Context) error {
	if c.stop != nil {
		select {
		case <-c.stop:
		default:
			close(c.stop)
		}
	}
	c.wg.Wait()
	return nil
}
