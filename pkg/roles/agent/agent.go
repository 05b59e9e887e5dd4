// Package agent assembles `outpost agent`: the node part (pkg/node) on the credentials of its
// join, behind a load balancer to the servers, with a renewer that keeps its certificates
// fresh.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/node/upstream"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/roles"
	"github.com/outpostk8s/outpost/pkg/roles/node"
	"github.com/outpostk8s/outpost/pkg/status"
)

// Agent is one run of `outpost agent`, after its join.
type Agent struct {
	Cfg     *config.Agent // Cfg.Node.Cluster comes from Joined
	Joined  *join.Result
	Log     *slog.Logger
	Out     *logging.Out
	Guard   *logging.Guard // where the embedded libraries' klog.Fatal calls go
	Started time.Time
	// GPU, from node.CheckGPU, is what the node's GPU layer is built from.
	GPU *layer.Plan
}

// Run writes the join's credentials, starts the node and blocks until ctx ends or a component
// dies; it then stops everything in reverse.
func (a *Agent) Run(ctx context.Context) error {
	d := a.Cfg.Node.Dirs
	return roles.Run(ctx, a, roles.RunOptions{PayloadDir: d.Payload(), Log: a.Log, Ready: a.announceReady, StatusSocket: d.StatusSocket(),
		Status: status.Report{Role: "agent", Node: a.Cfg.Node.NodeName, Started: a.Started}})
}

// Prepare stores what the join gave: the credentials and the node's kubeconfigs, which name
// the credential files so that the renewer can replace them while the node runs.
func (a *Agent) Prepare() error {
	d := a.Cfg.Node.Dirs
	if err := a.Joined.Write(d.AgentTLS()); err != nil {
		return err
	}
	caFile := d.AgentServerCAFile()
	for _, k := range []struct{ path, name string }{
		{d.KubeletKubeconfig(), pki.Kubelet},
		{d.KubeProxyKubeconfig(), pki.KubeProxy},
	} {
		if err := pki.KubeconfigFiles(k.path, "https://"+node.LBAddress, caFile, d.AgentTLS(), k.name); err != nil {
			return err
		}
	}
	return nil
}

// Plan is the node's, with the certificate renewer and the load balancer first.
func (a *Agent) Plan(binDir string) (*component.Plan, error) {
	n := a.Cfg.Node
	servers, err := a.servers()
	if err != nil {
		return nil, err
	}
	nd := &node.Node{Cfg: n, TLSDir: n.Dirs.AgentTLS(), BinDir: binDir, Servers: servers, GPU: a.GPU,
		Kubelet: upstream.Kubelet, KubeProxy: upstream.KubeProxy, Log: a.Log, Out: a.Out, Guard: a.Guard}
	parts, err := nd.Parts()
	if err != nil {
		return nil, err
	}
	p := component.NewPlan(component.StageRuntime, component.StageImages, component.StageKubelet, component.StageNetwork)
	p.Add(component.StageRuntime, &join.Renewer{Client: join.Client{Servers: a.Cfg.Join.Servers, Token: a.Cfg.Join.Token},
		Node: a.Joined.Node, Dir: n.Dirs.AgentTLS(), Log: a.Log.With("component", "node-certificates")})
	parts.Add(p)
	return p, nil
}

// servers are the load balancer's: the one that answered the join first, then the others.
func (a *Agent) servers() ([]string, error) {
	var hosts []string
	for _, u := range append([]string{a.Joined.Server}, a.Cfg.Join.Servers...) {
		p, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("server URL %q: %w", u, err)
		}
		if !slices.Contains(hosts, p.Host) {
			hosts = append(hosts, p.Host)
		}
	}
	return hosts, nil
}

// announceReady prints one line once this node is Ready.
func (a *Agent) announceReady(ctx context.Context) {
	n := a.Cfg.Node
	if a.Guard != nil { // the start-up window of expected upstream lines begins to close
		a.Guard.Started()
	}
	if roles.WaitReady(ctx, n.Dirs.KubeletKubeconfig(), n.NodeName, a.Started.Add(-time.Second)) {
		a.Log.Info(fmt.Sprintf("Outpost agent is ready: node %s joined %s and is Ready after %.1fs", n.NodeName, a.Joined.Server, time.Since(a.Started).Seconds()))
	}
}
