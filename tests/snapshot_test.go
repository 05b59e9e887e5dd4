package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestSnapshots: SQLite snapshots on a running server (control plane only, in its own
// namespaces): scheduled ones appear and are pruned to the retention; one saved by hand while
// writes go on restores on a fresh data dir on another node, with the same token, holding
// every object written before it (a Secret encrypted at rest included); a restart with the
// same flags does not restore again; bad restore input changes nothing.
func TestSnapshots(t *testing.T) {
	c := checkedCluster(t)
	s1 := c.AddNode("s1", "server", "--disable-agent", "--secrets-encryption",
		"--etcd-snapshot-schedule-cron", "*/2 * * * * *", "--etcd-snapshot-retention", "2")
	s1.Start()
	serving(t, s1)
	tokenB, err := os.ReadFile(filepath.Join(s1.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokenB))
	outpost := func(args ...string) (string, error) {
		out, err := exec.Command(c.Bin, args...).CombinedOutput()
		return string(out), err
	}
	ls := func() string {
		out, err := outpost("etcd-snapshot", "ls", "--data-dir", s1.DataDir())
		if err != nil {
			t.Fatalf("etcd-snapshot ls: %v %s", err, out)
		}
		return out
	}

	t.Run("Scheduled", func(t *testing.T) {
		harness.Eventually(t, time.Minute, "three scheduled snapshots, two kept", func() error {
			saved := strings.Count(s1.Log(), "snapshot saved")
			kept := regexp.MustCompile(`(?m)^etcd-snapshot-s1-\d+ `).FindAllString(ls(), -1)
			if saved < 3 || len(kept) != 2 {
				return fmt.Errorf("saved %d, kept %d", saved, len(kept))
			}
			return nil
		})
	})

	var snap string
	var before []string
	t.Run("SaveWhileWriting", func(t *testing.T) {
		s1.MustKubectl("create", "secret", "generic", "kept-secret", "--from-literal=k=the-value")
		var mu sync.Mutex
		var written []string
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w-%d", i)
				if _, err := s1.Kubectl("create", "configmap", name); err == nil {
					mu.Lock()
					written = append(written, name)
					mu.Unlock()
				}
			}
		}()
		time.Sleep(3 * time.Second)
		mu.Lock()
		before = append([]string(nil), written...)
		mu.Unlock()
		out, err := outpost("etcd-snapshot", "save", "--name", "manual", "--data-dir", s1.DataDir(), "--node-name", "s1")
		time.Sleep(2 * time.Second)
		close(stop)
		<-done
		if err != nil {
			t.Fatalf("save: %v %s", err, out)
		}
		m := regexp.MustCompile(`saved: (\S+) `).FindStringSubmatch(out)
		if m == nil || strings.Contains(out, "warning") {
			t.Fatalf("save said %q", out)
		}
		snap = m[1]
		if len(before) < 3 || len(written) <= len(before) {
			t.Fatalf("writes before the snapshot %d, in all %d: want writes on both sides", len(before), len(written))
		}
		if !strings.Contains(ls(), "manual-s1-") {
			t.Error("ls does not show the snapshot")
		}
	})
	if snap == "" {
		t.FailNow()
	}

	t.Run("BadRestoreChangesNothing", func(t *testing.T) {
		fresh := t.TempDir()
		notSnap := filepath.Join(fresh, "not-a-snapshot")
		os.WriteFile(notSnap, []byte("hello"), 0o600)
		wrong := tok[:len(tok)-4] + "zzzz"
		for what, args := range map[string][]string{
			"not a snapshot": {"--token", tok, "--cluster-reset-restore-path", notSnap},
			"wrong token":    {"--token", wrong, "--cluster-reset-restore-path", snap},
			"missing file":   {"--token", tok, "--cluster-reset-restore-path", filepath.Join(fresh, "none")},
		} {
			data := filepath.Join(fresh, "data-"+strings.ReplaceAll(what, " ", "-"))
			out, err := outpost(append([]string{"server", "--data-dir", data, "--cluster-reset", "--disable-agent"}, args...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if err == nil || len(lines) != 1 || !strings.Contains(out, "--cluster-reset-restore-path") {
				t.Errorf("%s: %v, want one line naming the flag: %q", what, err, out)
			}
			if state := harness.StateIn(data); len(state) > 0 {
				t.Errorf("%s: the data dir was written: %v", what, state)
			}
		}
	})

	t.Run("RestoreOnAnotherNode", func(t *testing.T) {
		args := []string{"--disable-agent", "--secrets-encryption", "--cluster-reset", "--cluster-reset-restore-path", snap, "--token", tok}
		s2 := c.AddNode("s2", "server", args...)
		start := time.Now()
		s2.Start()
		serving(t, s2)
		t.Logf("restored server serving %.1fs after start", time.Since(start).Seconds())
		have := map[string]bool{}
		for _, n := range strings.Fields(s2.MustKubectl("get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}")) {
			have[n] = true
		}
		for _, n := range before {
			if !have[n] {
				t.Errorf("configmap %s, written before the snapshot, is missing after the restore", n)
			}
		}
		if v := s2.MustKubectl("get", "secret", "kept-secret", "-o", "jsonpath={.data.k}"); v != "dGhlLXZhbHVl" {
			t.Errorf("encrypted Secret after restore: %q", v)
		}
		// The restored cluster keeps its CA: the token's pin still matches.
		if b, _ := os.ReadFile(filepath.Join(s2.DataDir(), "server", "tls", "server-ca.crt")); string(b) != readFile(t, filepath.Join(s1.DataDir(), "server", "tls", "server-ca.crt")) {
			t.Error("the restored server has another CA")
		}
		// A restart with the same flags keeps what was written since.
		s2.MustKubectl("create", "configmap", "after-restore")
		s2.Stop()
		s2.Start()
		serving(t, s2)
		if _, err := s2.Kubectl("get", "configmap", "after-restore"); err != nil || !strings.Contains(s2.Log(), "restored already") {
			t.Errorf("restart with --cluster-reset restored again: %v", err)
		}
	})
}

// serving waits until a control-plane-only server answers.
func serving(t *testing.T, s *harness.Node) { t.Helper(); waitServing(t, s, nil) }

// waitServing is serving that, when the server ends before it served, also prints more (when
// not nil: the datastore's side). No restart: a joining server must serve on its first start.
func waitServing(t *testing.T, s *harness.Node, more func() string) {
	t.Helper()
	// 4 min: under a full CI run (the arm64 build beside it) a joining server took over 2.
	deadline := time.Now().Add(4 * time.Minute)
	// A server that has not served 40 s after its start is asked once for its readiness
	// checks: a joining server that never serves ends after its apiserver's 1-minute hooks,
	// and then nothing can be asked.
	var early string
	for {
		_, err := s.Kubectl("get", "--raw", "/readyz")
		if err == nil {
			if early != "" { // slow, but it served: what held it up
				t.Logf("%s served %.0fs after its start; %s", s.Name, time.Since(s.Started()).Seconds(), early)
			}
			return
		}
		if early == "" && time.Since(s.Started()) > 40*time.Second && !s.Exited() {
			early = fmt.Sprintf("/readyz?verbose on its loopback %.0fs after its start:\n%s",
				time.Since(s.Started()).Seconds(), tailLines(s.LoopbackReadyz(), 40))
		}
		if s.Exited() {
			if more != nil {
				early += "\n" + more()
			}
			t.Fatalf("%s ended before it served. %s; its warnings and errors:\n%s\n%s",
				s.Name, s.Diagnose(), problemLines(s.Log(), 30), early)
		}
		if time.Now().After(deadline) {
			// The server's own last lines say why (it exited, etcd did not take it, …); when they
			// do not, its own readiness checks and its goroutines do.
			t.Fatalf("%s serving: not within 4m0s: %v\nlast lines of its log:\n%s\n/readyz?verbose on its loopback:\n%s\n%s",
				s.Name, err, tailLines(s.Log(), 25), tailLines(s.LoopbackReadyz(), 40), s.Diagnose())
		}
		time.Sleep(time.Second)
	}
}

// problemLines is the first n lines of a log that are not INFO: what went wrong first says more
// than a crash's last lines. Lines over 400 bytes keep their first and last 200.
func problemLines(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, " INFO ") || strings.TrimSpace(l) == "" {
			continue
		}
		if len(l) > 400 { // keep both ends: a JSON line's error is at its end
			l = l[:200] + " … " + l[len(l)-200:]
		}
		out = append(out, l)
	}
	// The first lines show what went wrong first, the last ones why the process ended (a
	// post-start hook's fatal error comes after a minute of retries).
	if len(out) > n {
		head := n / 3
		skipped := fmt.Sprintf("… (%d lines)", len(out)-n)
		out = append(append(out[:head:head], skipped), out[len(out)-(n-head):]...)
	}
	return strings.Join(out, "\n")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
