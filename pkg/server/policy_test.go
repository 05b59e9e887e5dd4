package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestPolicyCurrent(t *testing.T) {
	dir := t.TempDir()
	marker, db := filepath.Join(dir, "policy-version"), filepath.Join(dir, "state.db")
	if policyCurrent(marker, "v1.37.2", db) {
		t.Error("no marker: current")
	}
	// The first start records the version once the apiserver's whole /readyz passed.
	m := &policyMarker{path: marker, version: "v1.37.2"}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if policyCurrent(marker, "v1.37.2", db) {
		t.Error("datastore gone (deleted state.db): current")
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !policyCurrent(marker, "v1.37.2", db) || !policyCurrent(marker, "v1.37.2", "") {
		t.Error("same version, datastore there: not current")
	}
	if policyCurrent(marker, "v1.38.0", db) {
		t.Error("an upgrade must wait for its own policy: current")
	}
	// A start with the policy current writes nothing; a restore forgets it.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := (&policyMarker{path: marker, version: "v1.37.2", current: true}).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("current policy, marker written: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := forgetPolicy(marker); err != nil || policyCurrent(marker, "v1.37.2", db) {
		t.Errorf("after a restore: %v, current %v", err, policyCurrent(marker, "v1.37.2", db))
	}
	if err := forgetPolicy(marker); err != nil {
		t.Errorf("forgetting twice: %v", err)
	}
}
