// Package server assembles `outpost server`: the control plane (datastore, apiserver,
// scheduler, controller-manager, deploy, join API and the server's own helpers) from its
// completed config, composed with the node part (pkg/node) unless --disable-agent.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/control/policymarker"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/node/upstream"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/roles"
	"github.com/outpostk8s/outpost/pkg/roles/node"
	"github.com/outpostk8s/outpost/pkg/status"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Server is one run of `outpost server`.
type Server struct {
	Cfg     *config.Server
	Log     *slog.Logger
	Out     *logging.Out
	Guard   *logging.Guard // where the embedded libraries' klog.Fatal calls go
	Started time.Time
	// Restore, from checkRestore, is applied first thing in Prepare.
	Restore *Restore
	// Join, from checkJoin, is the cluster data of a server joining with --server.
	Join *Join
	// GPU, from node.CheckGPU, is what the node's GPU layer is built from.
	GPU *layer.Plan

	pki   *pki.Bundle
	token *token.File
	// agentToken joins agents only (the join API); token also joins servers.
	agentToken *token.File
	// forceNewCluster: this start resets the etcd membership (Prepare decides, once).
	forceNewCluster bool
	// policyCurrent: the datastore holds this version's default policy (Prepare decides).
	policyCurrent bool
}

// Run prepares the data dir, starts every component and blocks until ctx ends or a component
// dies; it then stops everything in reverse.
func (s *Server) Run(ctx context.Context) error {
	d := s.Cfg.Control.Dirs
	return roles.Run(ctx, s, roles.RunOptions{PayloadDir: d.Payload(), Log: s.Log, Ready: s.announceReady, StatusSocket: d.StatusSocket(),
		Status: status.Report{Role: "server", Node: s.Cfg.Control.NodeName, Started: s.Started}})
}

// Prepare writes what the components are built from: the PKI and kubeconfigs (existing valid
// files are kept) and the cluster token (made on first start).
func (s *Server) Prepare() error {
	if err := s.restore(); err != nil {
		return err
	}
	c := s.Cfg.Control
	if c.Datastore.Endpoint != "" {
		if err := s.joinShared(); err != nil {
			return err
		}
	} else {
		if s.Join != nil {
			if err := s.Join.data.Write(c.Dirs.ServerDir(), pki.WriteFile); err != nil {
				return err
			}
		}
		if err := s.writeCredentials(); err != nil {
			return err
		}
		if _, err := s.ensureToken(); err != nil {
			return err
		}
	}
	if err := s.writeEtcdCredentials(); err != nil {
		return err
	}
	if c.Etcd {
		s.forceNewCluster = s.resetMembers()
	}
	s.policyCurrent = policymarker.Current(c.Dirs.PolicyMarker(), s.policyRecord(), s.datastorePath())
	// Charts dropped here are served at /static/charts/ (k3s's layout).
	if err := os.MkdirAll(filepath.Join(c.Dirs.Static(), "charts"), 0o700); err != nil {
		return fmt.Errorf("static dir: %w", err)
	}
	// local-path volumes go under the storage path; private to root, as the data dir is.
	if !c.Disabled["local-storage"] {
		if err := os.MkdirAll(c.StoragePath, 0o700); err != nil {
			return fmt.Errorf("--default-local-storage-path: %w", err)
		}
	}
	return nil
}

// ensureToken keeps the stored cluster and agent tokens, or writes those given or new ones.
// It returns the cluster token.
func (s *Server) ensureToken() (token.Token, error) {
	c := s.Cfg.Control
	write := func(p string, b []byte) error { return pki.WriteFile(p, b, 0o600) }
	t, err := token.Ensure(c.Dirs.TokenFile(), s.pki.ServerCA.CertPEM, c.Token, write)
	if err != nil {
		return token.Token{}, err
	}
	a, err := token.EnsureAgent(c.Dirs.AgentTokenFile(), s.pki.ServerCA.CertPEM, c.AgentToken, t, write)
	if err != nil {
		return token.Token{}, err
	}
	if a.Matches(t) { // a file written by hand, or --agent-token set to the stored cluster token
		return token.Token{}, fmt.Errorf("the agent token in %s is the cluster token: agents would hold the key to every server; remove the file to have one made", c.Dirs.AgentTokenFile())
	}
	s.token = &token.File{Path: c.Dirs.TokenFile()}
	s.agentToken = &token.File{Path: c.Dirs.AgentTokenFile()}
	return t, nil
}

// Plan composes the control plane and, unless --disable-agent, the node. The node's runtime
// (containerd) starts first without gating the datastore, and the image import (CPU-bound on
// a first start) runs beside the apiserver's start once containerd is ready: the kubelet,
// after the controllers, finds both done. The server's node claims its name among the
// controllers (retrying until deploy applied the RBAC rules its supervisor identity needs).
func (s *Server) Plan(binDir string) (*component.Plan, error) {
	p := component.NewPlan(component.StageRuntime, component.StageDatastore, component.StageAPI,
		component.StageControllers, component.StageKubelet, component.StageNetwork)
	if err := s.controlPlane(p); err != nil {
		return nil, err
	}
	n := s.Cfg.Node
	if n == nil {
		return p, nil
	}
	nd := &node.Node{Cfg: n, TLSDir: n.Dirs.TLS(), BinDir: binDir, GPU: s.GPU,
		Kubelet: upstream.Kubelet, KubeProxy: upstream.KubeProxy, Log: s.Log, Out: s.Out, Guard: s.Guard}
	parts, err := nd.Parts()
	if err != nil {
		return nil, err
	}
	for _, c := range parts.Runtime {
		p.Add(component.StageRuntime, c, component.NotGating())
	}
	p.Add(component.StageAPI, parts.Images, component.After(parts.Containerd))
	parts.AddNode(p)
	return p, nil
}
