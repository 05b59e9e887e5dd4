package layer

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpostk8s/outpost/pkg/gpu/deviceplugin"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/labels"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

// initialLabels reads the Node's labels before the plugins first start, so a restarted node
// advertises its chosen sharing config and its declared MIG layout's strategy at once rather
// than the defaults first.
func (a *Layer) initialLabels(ctx context.Context) {
	if a.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return // a new node: the label loop applies them once the Node exists
	}
	label := n.Labels[sharing.ConfigLabel]
	a.mu.Lock()
	defer a.mu.Unlock()
	// The layout's name only: the label loop applies it (and records its state).
	a.mig.name = a.migName(n.Labels[mig.ConfigLabel])
	if a.cfg.Sharing == nil {
		label = ""
	}
	res, c, err := a.build(label)
	if err != nil {
		return // the label loop reports it
	}
	a.Res, a.sharingCfg, a.sharingName = res, c, label
}

// build computes the resources under the config label names. The caller holds a.mu.
func (a *Layer) build(label string) ([]resources.Resource, *sharing.Config, error) {
	c, err := a.cfg.Sharing.Pick(label)
	if err != nil {
		return nil, nil, err
	}
	res, err := resources.Build(a.Node, resources.Config{Strategy: a.strategy(), Replicas: a.cfg.Replicas, Sharing: c})
	if err != nil {
		return nil, nil, err
	}
	return res, c, nil
}

// applySharing switches the device plugins to the config the node's label names, when that
// changed. A name the set lacks, or a config the GPUs cannot honour, is reported once (log and
// Event) and the node keeps advertising what it did.
func (a *Layer) applySharing(ctx context.Context, st *status, label string) {
	if a.cfg.Sharing == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if label == a.sharingName || label == a.refused {
		return
	}
	res, c, err := a.build(label)
	if err == nil {
		old := a.Res
		if err = a.startPlugins(ctx, res); err != nil {
			if rerr := a.startPlugins(ctx, old); rerr != nil {
				a.log.Error("GPU device plugins could not be restored", "err", rerr)
			}
		}
	}
	if err != nil {
		a.refused = label
		a.log.Warn("GPU sharing config not applied: the node keeps its current one", "err", err)
		st.event(ctx, corev1.EventTypeWarning, "SharingConfigFailed", err.Error())
		return
	}
	a.refused, a.sharingName, a.sharingCfg = "", label, c
	name := label
	if name == "" {
		name = sharing.DefaultName
	}
	a.log.Info("GPU sharing config applied", "config", name, "resources", resourceSummary(res))
	st.event(ctx, corev1.EventTypeNormal, "SharingConfigApplied", fmt.Sprintf("GPU sharing config %s: %s", name, resourceSummary(res)))
}

// startPlugins replaces the running plugins with one per resource of res, carrying over which
// GPUs are unhealthy. The caller holds a.mu.
func (a *Layer) startPlugins(ctx context.Context, res []resources.Resource) error {
	a.stopPlugins()
	links := map[string][]string{}
	for _, g := range a.Node.GPUs {
		links[g.PCIBusID] = g.NVLinkPeers
	}
	a.Res = res
	for _, r := range res {
		p := deviceplugin.New(r, a.cfg.PluginDir, links, a.log)
		if err := p.Start(ctx); err != nil {
			a.stopPlugins()
			return err
		}
		a.plugins = append(a.plugins, p)
	}
	if a.monitor != nil {
		for uuid, reason := range a.monitor.Unhealthy() {
			a.markHealth(health.Change{UUID: uuid, Healthy: false, Reason: reason})
		}
	}
	return nil
}

// labels are the Node labels for the GPUs under the current sharing config, and the runtimes.
func (a *Layer) labels() map[string]string {
	a.mu.Lock()
	c := resources.Config{Strategy: a.strategy(), Replicas: a.cfg.Replicas, Sharing: a.sharingCfg}
	node := a.Node
	a.mu.Unlock()
	l := labels.Runtimes(a.Runtimes)
	maps.Copy(l, labels.For(node, c))
	a.migLabels(l)
	if a.monitor != nil { // validated in Start
		label, _ := a.validationState()
		l[ValidationLabel] = label
	}
	return l
}
