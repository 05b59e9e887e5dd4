package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/outpostk8s/outpost/pkg/pki"
)

// policyCurrent says whether the datastore holds the default RBAC policy and system
// PriorityClasses of this Kubernetes version: the marker names it and the datastore it was
// written for is still there (a deleted SQLite file or etcd member starts empty). A shared
// external datastore is taken at the marker's word.
func policyCurrent(marker, version string, datastore string) bool {
	b, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(b)) != version {
		return false
	}
	if datastore == "" {
		return true
	}
	_, err = os.Stat(datastore)
	return err == nil
}

// policyMarker records the version once the apiserver's whole /readyz passed: it starts in
// the phase after the apiserver, whose readiness then included the policy hooks. With the
// policy current there is nothing to record.
type policyMarker struct {
	path, version string
	current       bool
}

func (m *policyMarker) Name() string               { return "policy-marker" }
func (m *policyMarker) Init(context.Context) error { return nil }
func (m *policyMarker) Stop(context.Context) error { return nil }

func (m *policyMarker) Start(context.Context) error {
	if m.current {
		return nil
	}
	if err := pki.WriteFile(m.path, []byte(m.version+"\n"), 0o600); err != nil {
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
