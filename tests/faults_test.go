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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// TestKineRestart: kine's compactor calls logrus.Fatal when a compaction transaction outlasts
// its limit (5 s by default, which a loaded machine can take; 1 ms here, so it happens within
// seconds), which once ended the server about 5 minutes in, at kine's first compaction. Now
// kine is started again in-process: the apiserver reconnects, the server keeps serving, and no
// write it acknowledged is lost.
func TestKineRestart(t *testing.T) {
	s := harness.NewServer(t, "--disable-agent", "--kine-compact-timeout=1ms", "--kine-compact-interval=1s")
	t.Cleanup(s.Cleanup)
	s.Start()
	ready := func(what string) {
		t.Helper()
		harness.Eventually(t, 3*time.Minute, what, func() error {
			_, err := s.Kubectl("--request-timeout=5s", "get", "--raw", "/readyz")
			return err
		})
	}
	ready("server ready")
	load := harness.StartWriteLoad(t, s.Kubeconfig, "", "kine-restart")
	// and ConfigMaps overwritten in turn: each update leaves a row for the compactor to delete,
	// so its transactions take long enough to pass their limit
	churn := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		c := harness.Client(t, s.Kubeconfig, "")
		for i := 0; ; i++ {
			select {
			case <-churn:
				return
			default:
			}
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i%10)}, Data: map[string]string{"i": fmt.Sprint(i)}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				_, _ = c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
			}
			cancel()
		}
	}()
	defer func() { close(churn); <-churned }()
	harness.Eventually(t, 3*time.Minute, "kine started again after a Fatal of its", func() error {
		if s.Exited() {
			t.Fatalf("the server ended:\n%s", problemLines(s.Log(), 20))
		}
		if !strings.Contains(s.Log(), "kine started again") {
			return fmt.Errorf("no restart yet; kine's lines:\n%s", grepLines(s.Log(), "[kine]", 30))
		}
		return nil
	})
	time.Sleep(5 * time.Second) // writes through the restarted kine
	acked, failed := load.Stop()
	ready("server ready after kine's restart")
	missing, err := harness.Missing(t, s.Kubeconfig, "", "kine-restart", acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) < 10 || len(missing) > 0 {
		t.Errorf("%d writes acknowledged, %d of them lost: %v", len(acked), len(missing), missing)
	}
	log := s.Log()
	if !strings.Contains(log, "Transaction commit failed") {
		t.Errorf("kine was started again with no failed compaction commit before:\n%s", grepLines(log, "kine", 20))
	}
	if s.Exited() {
		t.Fatalf("the server ended:\n%s", problemLines(log, 20))
	}
	t.Logf("kine Fatal and restart under a write load: %d writes acknowledged, all kept, %d failed\n%s\n%s",
		len(acked), failed, grepLines(log, "stopped part of itself", 3), grepLines(log, "kine started again", 3))
}
