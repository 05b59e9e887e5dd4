package datastore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// runKine starts a real kine on a temp SQLite file.
func runKine(t *testing.T) (*Datastore, string) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "db", "state.db")
	// A short socket path: unix sockets allow ~100 bytes.
	sockDir, err := os.MkdirTemp("", "kine")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	k := serveKine(t, Config{DBFile: db, Socket: filepath.Join(sockDir, "k.sock"), CompactInterval: time.Hour, CompactBatch: 1000, PollInterval: time.Second})
	return k, db
}

func TestKVAndSnapshotOnRealKine(t *testing.T) {
	k, db := runKine(t)
	ctx := context.Background()
	kv, err := Dial(k.EtcdEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if v, rev, err := kv.Get(ctx, "/outpost/x"); err != nil || rev != 0 || v != nil {
		t.Fatalf("absent: %q %d %v", v, rev, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := kv.Set(ctx, "/outpost/x", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if v, _, err := kv.Get(ctx, "/outpost/x"); err != nil || string(v) != "two" {
		t.Fatalf("after update: %q %v", v, err)
	}
	if created, err := kv.Create(ctx, "/outpost/y", []byte("y")); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if created, err := kv.Create(ctx, "/outpost/y", []byte("other")); err != nil || created {
		t.Fatalf("create over an existing key: %v %v", created, err)
	}
	if v, _, _ := kv.Get(ctx, "/outpost/y"); string(v) != "y" {
		t.Fatalf("create overwrote: %q", v)
	}
	if keys, err := kv.Keys(ctx, "/outpost/"); err != nil || len(keys) != 2 {
		t.Fatalf("keys %v %v", keys, err)
	}
	// A snapshot while writes go on holds every write made before it.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			kv.Set(ctx, fmt.Sprintf("/outpost/load/%d", i), []byte("v"))
		}
	}()
	time.Sleep(200 * time.Millisecond)
	snap := filepath.Join(t.TempDir(), "snap")
	if err := SQLiteSnapshot(ctx, db, snap); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := SQLiteCheck(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := SQLiteGet(ctx, snap, "/outpost/x"); err != nil || !ok || string(v) != "two" {
		t.Errorf("snapshot value: %q %v %v", v, ok, err)
	}
	if _, ok, err := SQLiteGet(ctx, snap, "/outpost/none"); err != nil || ok {
		t.Errorf("absent key in the snapshot: %v %v", ok, err)
	}
	if err := kv.Delete(ctx, "/outpost/y"); err != nil {
		t.Fatal(err)
	}
	if _, rev, _ := kv.Get(ctx, "/outpost/y"); rev != 0 {
		t.Error("deleted key still there")
	}
	// Not a snapshot: a text file, and an SQLite file without kine's table.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("hello"), 0o600)
	if err := SQLiteCheck(ctx, bad); err == nil {
		t.Error("a text file passed as a snapshot")
	}
	if err := SQLiteCheck(ctx, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing file passed")
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	if d, err := openSQLite(empty+"x", false); err == nil {
		d.Close()
	}
	os.WriteFile(empty, nil, 0o600)
	if err := SQLiteCheck(ctx, empty); !errors.Is(err, ErrNotSnapshot) {
		t.Errorf("an empty SQLite file: %v", err)
	}
}
