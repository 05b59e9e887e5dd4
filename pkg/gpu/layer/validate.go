package layer

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// ValidationLabel says how the node's GPUs did in their validation: passed or failed.
const ValidationLabel = "nvidia.com/gpu.validation"

// ValidatedCondition is the node condition with each device's validation.
const ValidatedCondition corev1.NodeConditionType = "GPUValidated"

// DeviceIDs are the devices a node hands out, as validation names them: each whole GPU's UUID,
// and for a GPU in MIG mode its MIG devices' IDs instead.
func DeviceIDs(n *detect.Node) []string {
	var ids []string
	if n == nil {
		return nil
	}
	for _, g := range n.GPUs {
		if !g.MIGEnabled {
			ids = append(ids, g.UUID)
			continue
		}
		for _, m := range g.MIG {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// validate checks ids before they are handed out: a device that fails is marked unhealthy
// with its reason (out of allocatable until a probe validates it again), and the label and
// the GPUValidated condition say how every device did. A check that cannot run at all fails
// every device: a GPU is advertised only after it passes.
func (a *Layer) validate(ctx context.Context, ids []string) []gpulib.Validation {
	if len(ids) == 0 {
		return nil
	}
	start := time.Now()
	vs, err := a.lib.Validate(ids)
	took := time.Since(start)
	if err == nil && len(vs) != len(ids) {
		err = fmt.Errorf("%d results for %d devices", len(vs), len(ids))
	}
	if err != nil {
		vs = vs[:0]
		for _, id := range ids {
			vs = append(vs, gpulib.Validation{ID: id, Reason: err.Error()})
		}
	}
	failed, slowest := 0, 0.0
	a.vmu.Lock()
	if a.validations == nil {
		a.validations = map[string]gpulib.Validation{}
	}
	for _, v := range vs {
		a.validations[v.ID] = v
		slowest = max(slowest, v.Millis)
	}
	a.vdirty = true // the label loop sets the condition, retrying until the Node takes it
	a.vmu.Unlock()
	for _, v := range vs {
		if !v.OK {
			failed++
			a.log.Warn("GPU failed validation: not handed out", "device", v.ID, "reason", v.Reason)
			if a.monitor != nil { // nil only in tests that lay MIG out without Start
				a.monitor.Fail(v.ID, fmt.Sprintf("%s failed validation: %s", v.ID, v.Reason))
			}
		}
	}
	a.log.Info("GPUs validated", "devices", len(vs), "failed", failed, "slowest-ms", int(slowest), "took", took.Round(time.Millisecond))
	return vs
}

// forgetValidations drops the records of devices the node no longer has (a MIG layout
// replaced them), so a device made again under an old ID is judged by its own check.
func (a *Layer) forgetValidations(keep []string) {
	a.vmu.Lock()
	defer a.vmu.Unlock()
	for id := range a.validations {
		if !slices.Contains(keep, id) {
			delete(a.validations, id)
		}
	}
	a.vdirty = true
}

// validationState is the label's value and the condition for the devices the node has now.
func (a *Layer) validationState() (label string, cond corev1.NodeCondition) {
	a.mu.Lock()
	ids := DeviceIDs(a.Node)
	a.mu.Unlock()
	a.vmu.Lock()
	defer a.vmu.Unlock()
	var failed, pending []string
	for _, id := range ids {
		v, ok := a.validations[id]
		switch {
		case !ok:
			pending = append(pending, id)
		case !v.OK:
			failed = append(failed, id+": "+v.Reason)
		}
	}
	sort.Strings(failed)
	cond = corev1.NodeCondition{Type: ValidatedCondition, Status: corev1.ConditionTrue, Reason: "AllDevicesPassed",
		Message: fmt.Sprintf("%d GPU or MIG devices ran a CUDA kernel correctly", len(ids)), LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	label = "passed"
	switch {
	case len(failed) > 0:
		label, cond.Status, cond.Reason, cond.Message = "failed", corev1.ConditionFalse, "ValidationFailed", strings.Join(failed, "; ")
	case len(pending) > 0:
		label, cond.Status, cond.Reason, cond.Message = "pending", corev1.ConditionFalse, "ValidationPending", "not yet validated: "+strings.Join(pending, ", ")
	}
	return label, cond
}

// flushValidation sets the GPUValidated condition when a check changed it, for the devices the
// node has now; the label loop calls it, so a Node not yet registered gets it later.
func (a *Layer) flushValidation(ctx context.Context) {
	a.vmu.Lock()
	dirty := a.vdirty
	a.vmu.Unlock()
	if !dirty || a.st == nil {
		return
	}
	_, cond := a.validationState()
	if err := a.st.condition(ctx, cond); err != nil {
		a.log.Debug("GPUValidated condition: retrying", "err", err)
		return
	}
	a.vmu.Lock()
	a.vdirty = false
	a.vmu.Unlock()
}

// probe is the health monitor's recovery check: the GPU answers NVML, and the device (or, for
// a GPU in MIG mode, each of its MIG devices) passes validation again. A device that is gone
// (a MIG layout changed) holds nothing back.
func (a *Layer) probe(ctx context.Context) func(id string) bool {
	return func(id string) bool {
		a.mu.Lock()
		ids := DeviceIDs(a.Node)
		var of []string
		for _, g := range a.Node.GPUs {
			if g.UUID == id && g.MIGEnabled {
				for _, m := range g.MIG {
					of = append(of, m.ID)
				}
			}
		}
		a.mu.Unlock()
		if !slices.Contains(ids, id) && len(of) == 0 {
			return true
		}
		// A MIG device stays out while its GPU does (an XID's quiet spell).
		if gpu := gpulib.GPUOf(id); gpu != id && a.monitor.Unhealthy()[gpu] != "" {
			return false
		}
		if !a.lib.Probe(gpulib.GPUOf(id)) {
			return false
		}
		if len(of) == 0 {
			of = []string{id}
		}
		for _, v := range a.validate(ctx, of) {
			if !v.OK {
				return false
			}
		}
		return true
	}
}
