package layer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/labels"
)

// ConditionType is the node condition reporting GPU health.
const ConditionType corev1.NodeConditionType = "GPUHealthy"

// status writes GPU state onto the Node object, as the node itself (the kubelet's identity).
type status struct {
	client kubernetes.Interface
	node   string
	log    *slog.Logger
}

// keepLabels applies the labels once the Node exists, and again whenever someone changes them.
// want is asked each time with the Node's current labels: a label the user sets (the sharing
// config's name) can change what the node advertises.
func (s *status) keepLabels(ctx context.Context, want func(current map[string]string) map[string]string) {
	for ctx.Err() == nil {
		n, err := s.client.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
		if err == nil {
			want := want(n.Labels)
			patch := labels.Patch(n.Labels, want)
			if len(patch) == 0 {
				sleep(ctx, 10*time.Second) // a user's label change (the sharing config) shows within 10 s
				continue
			}
			body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": patch}})
			if _, err := s.client.CoreV1().Nodes().Patch(ctx, s.node, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
				s.log.Warn("GPU labels", "err", err)
			} else {
				s.log.Info("GPU labels applied", "node", s.node, "labels", len(want))
			}
		}
		sleep(ctx, 2*time.Second)
	}
}

// event records an Event on the Node, as the GPU layer.
func (s *status) event(ctx context.Context, typ, reason, msg string) {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: s.node + ".gpu.", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: s.node, UID: types.UID(s.node)},
		Reason:         reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: "outpost-gpu", Host: s.node},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}
	if _, err := s.client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		s.log.Warn("GPU event", "err", err)
	}
}

// report sets the GPUHealthy condition from the current unhealthy set and records an Event
// for the transition, retrying until the API server takes it.
func (s *status) report(ctx context.Context, c health.Change, unhealthy map[string]string, event bool) {
	cond := corev1.NodeCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: "AllGPUsHealthy",
		Message: "every GPU answers and reports no critical error", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	if len(unhealthy) > 0 {
		var msgs []string
		for _, m := range unhealthy {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "GPUUnhealthy", strings.Join(msgs, "; ")
	}
	reason, typ := "GPUUnhealthy", corev1.EventTypeWarning
	if c.Healthy {
		reason, typ = "GPUHealthy", corev1.EventTypeNormal
	}
	for i := 0; i < 30 && ctx.Err() == nil; i++ {
		err := s.condition(ctx, cond)
		if err == nil {
			if event {
				s.event(ctx, typ, reason, c.Reason)
			}
			return
		}
		s.log.Warn("GPUHealthy condition", "err", err)
		sleep(ctx, time.Second)
	}
}

// condition sets one condition on the Node's status (a strategic merge by type), stamped now.
func (s *status) condition(ctx context.Context, cond corev1.NodeCondition) error {
	cond.LastHeartbeatTime, cond.LastTransitionTime = metav1.Now(), metav1.Now()
	body, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if _, err := s.client.CoreV1().Nodes().PatchStatus(ctx, s.node, body); err != nil {
		return fmt.Errorf("patch node %s: %w", s.node, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
