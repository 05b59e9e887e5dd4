package layer

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
)

// MIGConditionType is the node condition saying whether the declared MIG layout is in place.
const MIGConditionType corev1.NodeConditionType = "GPUMIGLayoutApplied"

// migStatus is where the node's declared MIG layout stands; the state label shows it.
type migStatus struct {
	name  string // the layout asked for ("" none declared)
	state string // mig.State*
	why   string // what the last Event and the condition said
}

// strategy is the MIG strategy in force: the one set, else mixed where a layout is declared
// for GPUs that can do MIG.
func strategy(set resources.Strategy, declared bool, n *detect.Node) resources.Strategy {
	if set != "" {
		return set
	}
	if declared && n != nil {
		for _, g := range n.GPUs {
			if g.MIGCapable {
				return resources.Mixed
			}
		}
	}
	return resources.None
}

// strategy is the agent's: a layout counts as declared once the config or a label named one.
// The caller holds a.mu.
func (a *Layer) strategy() resources.Strategy {
	return strategy(a.cfg.Strategy, a.cfg.MIGConfig != "" || a.mig.name != "", a.Node)
}

// migName is the layout the node must have: its label's, else the config's.
func (a *Layer) migName(label string) string {
	if label != "" {
		return label
	}
	return a.cfg.MIGConfig
}

// holders names the pods holding each GPU (by UUID); nil without the kubelet's API.
func (a *Layer) holders(ctx context.Context) (map[string][]podresources.Holder, error) {
	if a.podHolders != nil {
		return a.podHolders(ctx)
	}
	if a.cfg.PodResourcesSocket == "" {
		return nil, nil
	}
	return podresources.Client{Socket: a.cfg.PodResourcesSocket, Devices: a.deviceGPUs()}.Holders(ctx)
}

// applyMIG brings the GPUs to the layout the label (or the config) names, when they are not
// in it: a layout that cannot be resolved fails with the GPUs untouched; a GPU that would
// change while a pod holds it waits (pending); a mode change the driver defers to a reset is
// reported (rebooting). Afterwards the device plugins advertise the new devices and the CDI
// spec names them. Each outcome is recorded once: state label, condition, Event.
func (a *Layer) applyMIG(ctx context.Context, st *status, label string) {
	name := a.migName(label)
	a.mu.Lock()
	cur := a.mig
	a.mu.Unlock()
	if name == "" || name == cur.name && (cur.state == mig.StateSuccess || cur.state == mig.StateFailed) {
		return
	}
	state, why := a.layOut(ctx, name)
	a.setMIG(ctx, st, migStatus{name: name, state: state, why: why})
}

// layOut does the work of applyMIG and says how it ended.
func (a *Layer) layOut(ctx context.Context, name string) (state, why string) {
	a.mu.Lock()
	node := a.Node
	a.mu.Unlock()
	plan, err := mig.Resolve(name, a.cfg.MIGLayouts, node)
	if err != nil {
		return mig.StateFailed, err.Error()
	}
	changing := differing(node, plan)
	if len(changing) == 0 {
		return a.adopt(ctx, node, name)
	}
	held, err := a.holders(ctx)
	if err != nil {
		return mig.StatePending, fmt.Sprintf("MIG layout %s waits: which pods hold the GPUs is unknown: %v", name, err)
	}
	if msg := busy(changing, held); msg != "" {
		return mig.StatePending, fmt.Sprintf("MIG layout %s waits until no pod holds the GPUs it changes: %s", name, msg)
	}
	a.log.Info("applying MIG layout", "layout", name, "gpus", len(changing))
	for pass := 0; len(changing) > 0 && pass < 2; pass++ {
		reset, err := a.applyPlans(changing)
		if err != nil {
			a.readopt(ctx, name) // GPUs before the failing one did change
			return mig.StateFailed, fmt.Sprintf("MIG layout %s: %v", name, err)
		}
		if len(reset) > 0 {
			a.readopt(ctx, name)
			return mig.StateRebooting, fmt.Sprintf("MIG layout %s: MIG mode of GPU %s changes only after a GPU reset or a reboot: reset the GPU (nvidia-smi -r) or reboot the node", name, strings.Join(reset, ", "))
		}
		if node, err = a.lib.Detect(); err != nil {
			return mig.StateFailed, fmt.Sprintf("MIG layout %s: GPU detection after the change: %v", name, err)
		}
		// GPUs that list their profiles only with MIG on are resolved now that it is.
		if plan, err = mig.Resolve(name, a.cfg.MIGLayouts, node); err != nil {
			a.undoUnresolved(changing)
			a.readopt(ctx, name)
			return mig.StateFailed, err.Error()
		}
		changing = differing(node, plan)
	}
	if len(changing) > 0 {
		a.undoUnresolved(changing)
		a.readopt(ctx, name)
		return mig.StateFailed, fmt.Sprintf("MIG layout %s: GPU %d is still not in it after the change (its driver lists no MIG profiles even with MIG on?)", name, changing[0].Index)
	}
	// Every device runs a kernel before it is handed out again: the driver reuses GPU and
	// compute instance IDs, so a device made again may carry an old one.
	a.forgetValidations(DeviceIDs(node))
	a.validate(ctx, DeviceIDs(node))
	return a.adopt(ctx, node, name)
}

// readopt advertises what the GPUs are after a change that stopped partway, so no plugin
// offers a device that is gone.
func (a *Layer) readopt(ctx context.Context, name string) {
	node, err := a.lib.Detect()
	if err != nil {
		a.log.Warn("GPU detection after a partial MIG change", "err", err)
		return
	}
	a.forgetValidations(DeviceIDs(node))
	a.validate(ctx, DeviceIDs(node))
	if state, why := a.adopt(ctx, node, name); state != mig.StateSuccess {
		a.log.Warn(why)
	}
}

// applyPlans applies each plan; it returns the GPUs whose mode change waits for a reset.
func (a *Layer) applyPlans(plans []mig.GPUPlan) ([]string, error) {
	var reset []string
	for _, p := range plans {
		res, err := a.lib.ApplyMIG(p)
		if err != nil {
			return nil, err
		}
		if res.ResetNeeded {
			reset = append(reset, fmt.Sprint(p.Index))
		}
	}
	return reset, nil
}

// undoUnresolved turns MIG off again on GPUs it was turned on for a layout that then did not
// resolve: they are left as they were.
func (a *Layer) undoUnresolved(plans []mig.GPUPlan) {
	for _, p := range plans {
		if p.Unresolved {
			if _, err := a.lib.ApplyMIG(mig.GPUPlan{Index: p.Index, UUID: p.UUID}); err != nil {
				a.log.Warn("MIG mode could not be turned off again", "gpu", p.Index, "err", err)
			}
		}
	}
}

// adopt makes node (as detected after a change) what the agent advertises: resources under
// the current sharing config, device plugins, CDI spec. It returns the state and its message.
func (a *Layer) adopt(ctx context.Context, node *detect.Node, name string) (state, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Node = node
	if err := a.writeSpec(); err != nil {
		return mig.StateFailed, fmt.Sprintf("MIG layout %s is on the GPUs, but the CDI spec for it could not be written: %v", name, err)
	}
	res, err := resources.Build(node, resources.Config{Strategy: strategy(a.cfg.Strategy, true, node), Replicas: a.cfg.Replicas, Sharing: a.sharingCfg})
	if err == nil && !reflect.DeepEqual(res, a.Res) { // a restart in the layout it has keeps its plugins
		err = a.startPlugins(ctx, res)
	}
	if err != nil {
		return mig.StateFailed, fmt.Sprintf("MIG layout %s is on the GPUs, but its devices are not advertised: %v", name, err)
	}
	return mig.StateSuccess, fmt.Sprintf("MIG layout %s applied: %s", name, resourceSummary(a.Res))
}

// differing is the plans of GPUs not yet as planned.
func differing(n *detect.Node, plan []mig.GPUPlan) []mig.GPUPlan {
	var out []mig.GPUPlan
	for _, p := range plan {
		for _, g := range n.GPUs {
			if g.Index == p.Index && mig.Differs(g, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// busy names the pods holding GPUs the plans change; "" when none do.
func busy(plans []mig.GPUPlan, held map[string][]podresources.Holder) string {
	var parts []string
	for _, p := range plans {
		for dev, hs := range held { // the GPU, or one of its MIG devices
			if dev != p.UUID && !strings.HasPrefix(dev, "MIG-"+p.UUID+"/") {
				continue
			}
			for _, h := range hs {
				parts = append(parts, fmt.Sprintf("GPU %d is held by pod %s/%s", p.Index, h.Namespace, h.Pod))
			}
		}
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	return strings.Join(parts, "; ")
}

// setMIG records an outcome: once per change, in the log, an Event and the node condition.
func (a *Layer) setMIG(ctx context.Context, st *status, s migStatus) {
	a.mu.Lock()
	same := a.mig == s
	a.mig = s
	a.mu.Unlock()
	if same {
		return
	}
	typ, reason, status := corev1.EventTypeNormal, "MIGLayoutApplied", corev1.ConditionTrue
	switch s.state {
	case mig.StatePending:
		reason, status = "MIGLayoutPending", corev1.ConditionFalse
	case mig.StateRebooting:
		typ, reason, status = corev1.EventTypeWarning, "MIGLayoutNeedsReset", corev1.ConditionFalse
	case mig.StateFailed:
		typ, reason, status = corev1.EventTypeWarning, "MIGLayoutFailed", corev1.ConditionFalse
	}
	if typ == corev1.EventTypeWarning {
		a.log.Warn(s.why, "state", s.state)
	} else {
		a.log.Info(s.why, "state", s.state)
	}
	if st == nil || st.client == nil {
		return
	}
	st.event(ctx, typ, reason, s.why)
	if err := st.condition(ctx, corev1.NodeCondition{Type: MIGConditionType, Status: status, Reason: reason, Message: s.why}); err != nil {
		a.log.Warn("MIG condition", "err", err)
	}
}

// migLabels is the state label, while a layout is declared.
func (a *Layer) migLabels(l map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mig.state != "" {
		l[mig.StateLabel] = a.mig.state
	}
}
