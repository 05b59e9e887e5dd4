package datastore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/outpostk8s/outpost/pkg/logging"
)

// lockedBuffer is kine's log, read while kine writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// kine ends its compactor with logrus.Fatal ("Transaction commit failed") when a compaction
// transaction outlasts its time limit: 5 s, which a loaded machine can take, ~5 minutes after
// the start (kine's first compaction); 1 ms here, where about one compaction in ten that passes
// its limit ends so. Until the guard, that ended the process. Now the guard ends only the
// compactor, and the datastore starts kine again: writes go on and none acknowledged is lost.
func TestKineStartsAgainAfterAFatal(t *testing.T) {
	l := logrus.StandardLogger()
	oldHooks, oldOut := l.ReplaceHooks(logrus.LevelHooks{}), l.Out
	var out lockedBuffer
	l.SetOutput(&out)
	// The guard's exit stays logrus's for the rest of the package's tests: kine's last
	// compactor may outlive its Stop (kine does not wait for it) and fail once more.
	t.Cleanup(func() { l.ReplaceHooks(oldHooks); l.SetOutput(oldOut) })
	guard := logging.NewGuard()
	guard.TakeLogrus(l)
	guard.Otherwise(func(comp, msg string) { t.Errorf("a Fatal of %s reached no handler: %s", comp, msg) })

	dir := t.TempDir()
	k := serveKine(t, Config{DBFile: filepath.Join(dir, "db", "state.db"), Socket: filepath.Join(dir, "kine.sock"),
		CompactInterval: 200 * time.Millisecond, CompactBatch: 1000, PollInterval: time.Second,
		CompactTimeout: time.Millisecond, Guard: guard})
	kv, err := Dial(k.EtcdEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })

	// Writers overwrite their own keys with rising numbers, each write a row for the
	// compactor. After the restart each key holds at least the number it was last acknowledged
	// with (a write that timed out may still have landed).
	var (
		mu    sync.Mutex
		acked = map[string]int{}
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/outpost/restart/%d/%d", w, i%20)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if kv.Set(ctx, key, []byte(strconv.Itoa(i))) == nil {
					mu.Lock()
					acked[key] = i
					mu.Unlock()
				}
				cancel()
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for k.restarts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	log := out.String()
	if k.restarts.Load() == 0 {
		t.Fatalf("kine was not started again within 2 minutes; its Fatal lines: %q", grep(log, "commit failed"))
	}
	if !strings.Contains(log, "Transaction commit failed") {
		t.Errorf("the restart followed no compaction's failed commit: %q", grep(log, "stopped"))
	}
	if strings.Contains(log, "level=fatal") || strings.Contains(log, " FATAL ") {
		t.Errorf("a FATAL line: %q", grep(log, "atal"))
	}

	// kine may be starting again now (its compactor keeps failing here): retry for a minute
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	retry := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s after the restart: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for key, want := range acked {
		retry("read "+key, func() error {
			got, _, err := kv.Get(ctx, key)
			if n, perr := strconv.Atoi(string(got)); err == nil && (perr != nil || n < want) {
				t.Errorf("%s: %q after the restart, acknowledged %d", key, got, want)
			}
			return err
		})
	}
	retry("a write", func() error { return kv.Set(ctx, "/outpost/restart/after", []byte("x")) })
	t.Logf("kine started again %d time(s); %d keys as acknowledged", k.restarts.Load(), len(acked))
}

// grep is log's lines holding s.
func grep(log, s string) []string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
