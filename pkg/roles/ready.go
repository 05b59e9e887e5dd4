package roles

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpostk8s/outpost/pkg/kubeclient"
)

// WaitReady waits until the Node named name is Ready with a heartbeat after since (after a
// restart the old Ready condition lingers: only this run's counts), reading it with the
// credentials kubeconfig names (a node may read its own Node). It returns false when ctx ends
// first.
func WaitReady(ctx context.Context, kubeconfig, name string, since time.Time) bool {
	cs, err := kubeclient.New(kubeconfig)
	if err != nil {
		return false
	}
	for ctx.Err() == nil {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && ready(n, since) {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // a Get: cheap, and the line is the start's measure
		}
	}
	return false
}

func ready(n *corev1.Node, since time.Time) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since)
		}
	}
	return false
}
