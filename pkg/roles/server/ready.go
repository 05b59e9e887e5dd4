package server

import (
	"context"
	"fmt"
	"time"

	"github.com/outpostk8s/outpost/pkg/roles"
)

// announceReady prints one line once this server's node is Ready (or, without a node, once the
// control plane runs): the moment a person can use the cluster, with the kubeconfig path and
// how to use it.
func (s *Server) announceReady(ctx context.Context) {
	c := s.Cfg.Control
	if s.Guard != nil { // the start-up window of expected upstream lines begins to close
		s.Guard.Started()
	}
	if s.Cfg.Node == nil {
		s.Log.Info(fmt.Sprintf("Outpost is ready: control plane up after %.1fs, no node here (--disable-agent). Admin kubeconfig: %s. Agents join with the token in %s",
			time.Since(s.Started).Seconds(), c.Kubeconfig, c.Dirs.AgentTokenFile()))
		return
	}
	if roles.WaitReady(ctx, c.Dirs.AdminKubeconfig(), s.Cfg.Node.NodeName, s.Started.Add(-time.Second)) {
		s.Log.Info(fmt.Sprintf("Outpost is ready: node %s is Ready after %.1fs. Admin kubeconfig: %s — use `outpost kubectl get pods -A`, or `export KUBECONFIG=%s` for kubectl, helm and client-go. Agents join with the token in %s",
			s.Cfg.Node.NodeName, time.Since(s.Started).Seconds(), c.Kubeconfig, c.Kubeconfig, c.Dirs.AgentTokenFile()))
	}
}
