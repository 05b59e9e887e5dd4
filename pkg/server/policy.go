package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/version"
)

// policyRecord is what the marker holds: the Kubernetes version and which datastore (for an
// external one, a hash of its endpoint: pointing the server at another database does not
// match).
func (s *Server) policyRecord() string {
	c := s.Cfg.Control
	switch {
	case c.Etcd:
		return version.Kubernetes + " etcd"
	case c.Datastore.Endpoint != "":
		sum := sha256.Sum256([]byte(c.Datastore.Endpoint))
		return version.Kubernetes + " external " + hex.EncodeToString(sum[:8])
	}
	return version.Kubernetes + " sqlite"
}

// datastorePath is the local datastore whose loss empties the cluster, "" for an external one.
func (s *Server) datastorePath() string {
	c := s.Cfg.Control
	switch {
	case c.Etcd:
		return c.Dirs.EtcdDataDir()
	case c.Datastore.Endpoint != "":
		return ""
	}
	return c.Dirs.DBFile()
}

// policyCurrent says whether the datastore holds the default RBAC policy and system
// PriorityClasses of this Kubernetes version: the marker holds this record and the local
// datastore it was written for is still there (a deleted SQLite file or etcd member starts
// empty).
func policyCurrent(marker, record string, datastore string) bool {
	b, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(b)) != record {
		return false
	}
	if datastore == "" {
		return true
	}
	_, err = os.Stat(datastore)
	return err == nil
}

// policyMarker records them once the apiserver's whole /readyz passed: it starts in
// the phase after the apiserver, whose readiness then included the policy hooks. With the
// policy current there is nothing to record.
type policyMarker struct {
	path, record string
	current      bool
}

func (m *policyMarker) Name() string               { return "policy-marker" }
func (m *policyMarker) Init(context.Context) error { return nil }
func (m *policyMarker) Stop(context.Context) error { return nil }

func (m *policyMarker) Start(context.Context) error {
	if m.current {
		return nil
	}
	if err := pki.WriteFile(m.path, []byte(m.record+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the policy version: %w", err)
	}
	return nil
}

// forgetPolicy drops the marker: the datastore is replaced (a restore), its policy unknown.
func forgetPolicy(marker string) error {
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget the policy version: %w", err)
	}
	return nil
}
