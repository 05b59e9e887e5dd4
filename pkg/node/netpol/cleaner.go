package netpol

import (
	"context"

	"github.com/outpostk8s/outpost/pkg/component"
)

// ForwardChain is the chain kube-router jumps to from FORWARD; its presence says an earlier
// run enforced policies here.
const ForwardChain = "KUBE-ROUTER-FORWARD"

// Cleaner runs on a node started with NetworkPolicy off: it removes the chains and ipsets an
// earlier run left, with kube-router's own cleanup, so that stale policies stop holding.
type Cleaner struct {
	Config
	// ChainExists reports whether the filter table has the chain (the host's iptables).
	ChainExists func(chain string) (bool, error)

	ctl *Controller // the cleanup's build, while it runs
}

var _ component.Component = (*Cleaner)(nil)

func (c *Cleaner) Name() string               { return "network-policy-cleanup" }
func (c *Cleaner) Init(context.Context) error { return nil }

// Start cleans in the background once this node's Node exists (kube-router's cleanup is built
// on it); a failure is reported, not fatal: the node works without policies.
func (c *Cleaner) Start(context.Context) error {
	if ok, err := c.ChainExists(ForwardChain); err != nil || !ok {
		return nil
	}
	if err := missingTools(c.LookPath); err != nil {
		c.Log.Warn("NetworkPolicy rules of an earlier run are still in place: remove them with outpost-killall.sh", "err", err)
		return nil
	}
	c.ctl = &Controller{cfg: c.Config, stop: make(chan struct{})}
	c.ctl.wg.Add(1)
	go func() {
		defer c.ctl.wg.Done()
		npc, _, ok := c.ctl.buildWhenNodeExists()
		if !ok {
			return
		}
		npc.Cleanup()
		if ok, _ := c.ChainExists(ForwardChain); ok {
			c.Log.Warn("NetworkPolicy rules of an earlier run are still in place: remove them with outpost-killall.sh")
			return
		}
		c.Log.Info("NetworkPolicy is off: removed the rules of an earlier run")
	}()
	return nil
}

func (c *Cleaner) Stop(ctx context.Context) error {
	if c.ctl != nil {
		return c.ctl.Stop(ctx)
	}
	return nil
}
