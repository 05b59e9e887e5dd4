package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/tests/harness"
)

// TestSQLiteFaults: the SQLite datastore under faults, on a control-plane-only server whose
// datastore dir is a small filesystem of its own.
//   - SIGKILL under a steady write load: every write the client saw acknowledged is there
//     after the restart.
//   - The filesystem fills up: writes fail with a clear error, nothing is corrupted, and the
//     server takes writes again by itself once space returns.
//   - The datastore runs power-safe: WAL with synchronous FULL, read back from its file.
func TestSQLiteFaults(t *testing.T) {
	s := harness.NewServer(t, "--disable-agent")
	t.Cleanup(s.Cleanup)
	db := filepath.Join(s.DataDir(), "server", "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "outpost-test-db", db).CombinedOutput(); err != nil {
		t.Fatalf("mount a small filesystem on %s: %v %s", db, err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(db, syscall.MNT_DETACH) }) // after the server stops
	s.Start()
	serve := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		harness.Eventually(t, 3*time.Minute, what, func() error {
			_, err := s.Kubectl("--request-timeout=5s", "get", "--raw", "/readyz")
			return err
		})
		return time.Since(start)
	}
	serve("server ready")

	t.Run("KilledUnderWriteLoad", func(t *testing.T) {
		load := harness.StartWriteLoad(t, s.Kubeconfig, "", "sqlite-kill")
		time.Sleep(5 * time.Second)
		s.Kill()
		time.Sleep(time.Second) // writes keep coming and fail: the client sees no ack for them
		acked, failed := load.Stop()
		s.Start()
		took := serve("server ready after the kill")
		missing, err := harness.Missing(t, s.Kubeconfig, "", "sqlite-kill", acked)
		if err != nil {
			t.Fatal(err)
		}
		if len(acked) < 10 || len(missing) > 0 {
			t.Errorf("%d writes acknowledged before the kill, %d of them lost: %v", len(acked), len(missing), missing)
		}
		t.Logf("SIGKILL under load: %d acknowledged writes all kept (%d failed while it was down); serving again %.1fs after the restart",
			len(acked), failed, took.Seconds())
	})

	t.Run("DiskFull", func(t *testing.T) {
		filler := filepath.Join(db, "filler")
		fill(t, filler)
		// Objects near the size limit: the WAL the datastore has reuses its space, so small
		// writes may still fit for a while.
		big := filepath.Join(t.TempDir(), "big")
		if err := os.WriteFile(big, []byte(strings.Repeat("x", 900<<10)), 0o600); err != nil {
			t.Fatal(err)
		}
		var refusal string
		var accepted []string // acknowledged while the disk filled: they must be kept
		harness.Eventually(t, time.Minute, "a write refused on the full disk", func() error {
			name := fmt.Sprintf("on-full-disk-%d", time.Now().UnixNano())
			out, err := s.Kubectl("--request-timeout=10s", "create", "configmap", name, "--from-file=k="+big)
			if err == nil {
				accepted = append(accepted, name)
				return fmt.Errorf("write accepted: %s", out)
			}
			refusal = err.Error()
			return nil
		})
		t.Logf("write on the full disk: %s", refusal)
		if !strings.Contains(refusal, "full") {
			t.Errorf("the refusal does not say the disk is full: %s", refusal)
		}
		full := time.Now()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, time.Minute, "writes again once space returned", func() error {
			_, err := s.Kubectl("--request-timeout=5s", "create", "configmap", "after-full-disk")
			if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
				return nil
			}
			return err
		})
		t.Logf("writes accepted %.1fs after space returned", time.Since(full).Seconds())
		// kine before v0.17.6 acknowledged a create whose insert failed on the full disk.
		for _, name := range accepted {
			if _, err := s.Kubectl("get", "configmap", name); err != nil {
				t.Errorf("%s was acknowledged on the filling disk and is gone: %v", name, err)
			}
		}
		if s.Exited() {
			t.Fatalf("the server ended on the full disk:\n%s", problemLines(s.Log(), 20))
		}
	})

	t.Run("PowerSafeAndIntact", func(t *testing.T) {
		if !strings.Contains(s.Log(), "synchronous=FULL") {
			t.Errorf("the server does not say its datastore is power-safe:\n%s", grepLines(s.Log(), "SQLite", 5))
		}
		s.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := datastore.SQLiteCheck(ctx, filepath.Join(db, "state.db")); err != nil {
			t.Errorf("the datastore after the faults: %v", err)
		}
	})
}

// fill writes path until its filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			return
		}
	}
}
