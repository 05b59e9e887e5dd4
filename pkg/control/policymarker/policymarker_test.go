package policymarker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/version"
)

func TestPolicyCurrent(t *testing.T) {
	dir := t.TempDir()
	marker, db := filepath.Join(dir, "policy-version"), filepath.Join(dir, "state.db")
	if Current(marker, "v1.37.2 sqlite", db) {
		t.Error("no marker: current")
	}
	// The first start records the version once the apiserver's whole /readyz passed.
	m := &Marker{Path: marker, Record: "v1.37.2 sqlite"}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Current(marker, "v1.37.2 sqlite", db) {
		t.Error("datastore gone (deleted state.db): current")
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !Current(marker, "v1.37.2 sqlite", db) || !Current(marker, "v1.37.2 sqlite", "") {
		t.Error("same version, datastore there: not current")
	}
	if Current(marker, "v1.38.0 sqlite", db) || Current(marker, "v1.37.2 etcd", db) {
		t.Error("an upgrade must wait for its own policy: current")
	}
	// A start with the policy current writes nothing; a restore forgets it.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := (&Marker{Path: marker, Record: "v1.37.2 sqlite", Current: true}).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("current policy, marker written: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := Forget(marker); err != nil || Current(marker, "v1.37.2 sqlite", db) {
		t.Errorf("after a restore: %v, current %v", err, Current(marker, "v1.37.2 sqlite", db))
	}
	if err := Forget(marker); err != nil {
		t.Errorf("forgetting twice: %v", err)
	}
}

// The record names the datastore: another database, or a move to etcd, starts by waiting.
func TestPolicyRecordNamesTheDatastore(t *testing.T) {
	pg1, pg2 := Record(false, "postgres://a@db1/outpost"), Record(false, "postgres://a@db2/outpost")
	all := []string{Record(false, ""), Record(true, ""), pg1, pg2}
	for i := range all {
		for j := range all {
			if i != j && all[i] == all[j] {
				t.Errorf("records %d and %d are the same: %q", i, j, all[i])
			}
		}
	}
	if strings.Contains(pg1, "db1") || !strings.HasPrefix(pg1, version.Kubernetes+" ") {
		t.Errorf("record %q: want the version first and no endpoint in the clear", pg1)
	}
}
