package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// announceReady prints one line once this node is Ready: the moment a person can use the
// cluster, with the kubeconfig path and how to use it.
func (s *Server) announceReady(ctx context.Context) {
	if s.Cfg.DisableAgent {
		s.Log.Info(fmt.Sprintf("Outpost is ready: control plane up after %.1fs, no node here (--disable-agent). Admin kubeconfig: %s. Join token: %s",
			time.Since(s.Started).Seconds(), s.Cfg.Kubeconfig, s.TokenFile()))
		return
	}
	kc := s.cred("admin")
	if s.Joined != nil {
		kc = s.Cfg.Dirs.KubeletKubeconfig() // a node may read its own Node
	}
	cs, _, _, err := s.client(kc)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		n, err := cs.CoreV1().Nodes().Get(ctx, s.Cfg.NodeName, metav1.GetOptions{})
		// After a restart the old Ready condition lingers: only a heartbeat from this run counts.
		if err == nil && nodeReady(n, s.Started.Add(-time.Second)) {
			if s.Joined != nil {
				s.Log.Info(fmt.Sprintf("Outpost agent is ready: node %s joined %s and is Ready after %.1fs", s.Cfg.NodeName, s.Joined.Server, time.Since(s.Started).Seconds()))
				return
			}
			s.Log.Info(fmt.Sprintf("Outpost is ready: node %s is Ready after %.1fs. Admin kubeconfig: %s — use `outpost kubectl get pods -A`, or `export KUBECONFIG=%s` for kubectl, helm and client-go. Join token: %s",
				s.Cfg.NodeName, time.Since(s.Started).Seconds(), s.Cfg.Kubeconfig, s.Cfg.Kubeconfig, s.TokenFile()))
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node, since time.Time) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since)
		}
	}
	return false
}
