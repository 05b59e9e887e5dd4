package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestMain points the outer binary's data dir, where a command names none (--version,
// check-config, kubectl), at the run's shared payload instead of this host's
// /var/lib/outpost, and removes that payload at the end. Commands with --config or
// OUTPOST_CONFIG_FILE of their own are unaffected.
func TestMain(m *testing.M) {
	shared := harness.SharedPayload()
	cfg := filepath.Join(shared, "config.yaml")
	if os.Getenv("OUTPOST_CONFIG_FILE") == "" && os.MkdirAll(shared, 0o700) == nil &&
		os.WriteFile(cfg, []byte(fmt.Sprintf("data-dir: %s\n", shared)), 0o600) == nil {
		os.Setenv("OUTPOST_CONFIG_FILE", cfg)
	}
	code := m.Run()
	_ = os.RemoveAll(shared)
	os.Exit(code)
}
