// Package policymarker records which Kubernetes version's default RBAC policy and system
// PriorityClasses the datastore holds, so that a restart of the same version need not wait
// for the apiserver's policy hooks.
package policymarker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/version"
)

// Record is what the marker holds: the Kubernetes version and which datastore, etcd or an
// external one at endpoint or else SQLite (for an external one, a hash of its endpoint:
// pointing the server at another database does not match).
func Record(etcd bool, endpoint string) string {
	switch {
	case etcd:
		return version.Kubernetes + " etcd"
	case endpoint != "":
		sum := sha256.Sum256([]byte(endpoint))
		return version.Kubernetes + " external " + hex.EncodeToString(sum[:8])
	}
	return version.Kubernetes + " sqlite"
}

// Current says whether the datastore holds the default RBAC policy and system
// PriorityClasses of this Kubernetes version: the marker holds this record and the local
// datastore it was written for is still there (a deleted SQLite file or etcd member starts
// empty).
func Current(marker, record string, datastore string) bool {
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

// Marker records them once the apiserver's whole /readyz passed: it starts in
// the phase after the apiserver, whose readiness then included the policy hooks. With the
// policy current there is nothing to record.
type Marker struct {
	Path, Record string
	Current      bool // the datastore holds them already: nothing to record
}

func (m *Marker) Name() string               { return "policy-marker" }
func (m *Marker) Init(context.Context) error { return nil }
func (m *Marker) Stop(context.Context) error { return nil }

func (m *Marker) Start(context.Context) error {
	if m.Current {
		return nil
	}
	if err := pki.WriteFile(m.Path, []byte(m.Record+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the policy version: %w", err)
	}
	return nil
}

// Forget drops the marker: the datastore is replaced (a restore), its policy unknown.
func Forget(marker string) error {
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget the policy version: %w", err)
	}
	return nil
}

var _ component.Component = (*Marker)(nil)
