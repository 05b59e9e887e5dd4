package datastore

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// serveKine starts the datastore cfg describes, stopped when the test ends, and waits until its
// socket answers.
func serveKine(t testing.TB, cfg Config) *Datastore {
	t.Helper()
	k := New(cfg)
	ctx := context.Background()
	if err := k.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Stop(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for k.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("kine not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

// startKine runs the SQLite datastore in dir and returns a client of its socket.
func startKine(t testing.TB, synchronous string) (*Datastore, *KV) {
	t.Helper()
	dir := t.TempDir()
	k := serveKine(t, Config{DBFile: filepath.Join(dir, "db", "state.db"), Socket: filepath.Join(dir, "kine.sock"),
		CompactInterval: time.Hour, CompactBatch: 1000, PollInterval: time.Second, Synchronous: synchronous})
	kv, err := Dial(k.EtcdEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return k, kv
}

// Power loss must not drop an acknowledged write: the SQLite datastore runs in WAL mode with
// synchronous FULL unless told otherwise, read back from the running datastore's file.
func TestSQLiteDatastoreIsPowerSafe(t *testing.T) {
	for given, want := range map[string]string{"": "FULL", "NORMAL": "NORMAL"} {
		k, kv := startKine(t, given)
		if err := kv.Set(context.Background(), "/outpost/test", []byte("v")); err != nil {
			t.Fatal(err)
		}
		journal, sync, err := k.SQLiteSettings(context.Background())
		if err != nil || journal != "wal" || sync != want {
			t.Errorf("synchronous %q: journal %q, synchronous %q, %v; want wal, %s", given, journal, sync, err, want)
		}
	}
}

// BenchmarkSQLiteCommit measures one acknowledged write through kine's etcd API (as the
// apiserver writes) with each synchronous mode: `go test -run '^$' -bench SQLiteCommit ./pkg/datastore`.
func BenchmarkSQLiteCommit(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			_, kv := startKine(b, mode)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := kv.Set(ctx, fmt.Sprintf("/outpost/bench/%d", i%200), []byte("a value the size of a small object")); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
