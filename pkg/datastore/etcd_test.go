package datastore

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/outpostk8s/outpost/pkg/pki"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runEtcd starts a real embedded etcd member named name; tlsFrom, when set, is a member whose
// etcd CA it shares (as bootstrap data would give it).
func runEtcd(t *testing.T, name string, tlsFrom string, mod func(*EtcdConfig)) (*Etcd, string) {
	t.Helper()
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if tlsFrom != "" {
		for _, f := range []string{"ca.crt", "ca.key"} {
			b, err := os.ReadFile(filepath.Join(tlsFrom, "etcd", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.WriteFile(filepath.Join(tlsDir, "etcd", f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pki.EnsureEtcd(pki.EtcdSpec{Dir: tlsDir, NodeName: name, NodeIP: net.ParseIP("127.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "etcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := EtcdConfig{Name: name, DataDir: filepath.Join(dir, "etcd"), Socket: filepath.Join(sockDir, "e.sock"),
		NodeIP: net.ParseIP("127.0.0.1"), ClientPort: freePort(t), PeerPort: freePort(t), TLSDir: filepath.Join(tlsDir, "etcd"),
		Log: func(level, msg string) { t.Logf("etcd %s: %s %s", name, level, msg) }}
	if mod != nil {
		mod(&cfg)
	}
	e := NewEtcd(cfg)
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(ctx) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := e.Ready(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd %s not ready: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e, tlsDir
}

// TestEtcdMigrateJoinRemove: a real kine SQLite file is migrated into a new embedded etcd
// (every key, Events with a lease), a second member joins through AddMember and sees the
// data, and RemoveMember takes it out again.
func TestEtcdMigrateJoinRemove(t *testing.T) {
	k, db := runKine(t)
	ctx := context.Background()
	kv, err := Dial(k.EtcdEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := kv.Create(ctx, fmt.Sprintf("/registry/configmaps/default/cm%02d", i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "/registry/configmaps/default/cm03"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Set(ctx, "/registry/configmaps/default/cm04", []byte("changed")); err != nil {
		t.Fatal(err)
	}
	kv.Close()
	k.Stop(ctx)

	var migrated int
	first, tlsDir := runEtcd(t, "one", "", func(c *EtcdConfig) {
		c.Seed = func(ctx context.Context, cli *clientv3.Client) (err error) {
			migrated, err = MigrateSQLite(ctx, db, cli)
			return err
		}
	})
	if migrated != 19 {
		t.Fatalf("migrated %d keys, want 19", migrated)
	}
	cli, err := first.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	get := func(c *clientv3.Client, key string) string {
		t.Helper()
		r, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Kvs) == 0 {
			return "<absent>"
		}
		return string(r.Kvs[0].Value)
	}
	if g := get(cli, "/registry/configmaps/default/cm04"); g != "changed" {
		t.Fatalf("cm04 = %q", g)
	}
	if g := get(cli, "/registry/configmaps/default/cm03"); g != "<absent>" {
		t.Fatalf("deleted cm03 came back: %q", g)
	}
	// Again: nothing new is written.
	if n, err := MigrateSQLite(ctx, db, cli); err != nil || n != 0 {
		t.Fatalf("second migration wrote %d (%v)", n, err)
	}

	second, _ := runEtcd(t, "two", tlsDir, func(c *EtcdConfig) {
		c.Join = func(ctx context.Context, name, peerURL string) (string, error) {
			return AddMember(ctx, cli, name, peerURL)
		}
	})
	cli2, err := second.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if g := get(cli2, "/registry/configmaps/default/cm10"); g != "v10" {
		t.Fatalf("the joined member reads cm10 = %q", g)
	}
	ms, err := Members(ctx, cli)
	if err != nil || len(ms) != 2 {
		t.Fatalf("members %v %v", ms, err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "two") {
		t.Fatalf("members %v", names)
	}
	if ok, err := RemoveMember(ctx, cli, "two"); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	// The removed member stops on its own, and says so.
	select {
	case err := <-second.Done():
		if err == nil || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("removed member's end: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the removed member kept running")
	}
	if ok, err := RemoveMember(ctx, cli, "two"); ok || err != nil {
		t.Fatalf("second remove: %v %v", ok, err)
	}
}

// TestEtcdSnapshotRestore: a snapshot taken through the API holds what was written (read
// straight from the file), and a member restored from it serves that data alone.
func TestEtcdSnapshotRestore(t *testing.T) {
	e, _ := runEtcd(t, "one", "", nil)
	ctx := context.Background()
	cli, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, kv := range [][2]string{{"/outpost/a", "1"}, {"/outpost/b", "2"}, {"/outpost/a", "3"}} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "/outpost/b"); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := (EtcdSource{Endpoint: e.EtcdEndpoint()}).SaveTo(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/outpost/after", "x"); err != nil {
		t.Fatal(err)
	}
	if sq, err := IsSQLite(snap); err != nil || sq {
		t.Fatalf("IsSQLite(etcd snapshot) = %v %v", sq, err)
	}
	if err := EtcdSnapshotCheck(snap); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a snapshot at all, no"), 0o600)
	if err := EtcdSnapshotCheck(junk); err == nil {
		t.Fatal("junk passed as a snapshot")
	}
	if v, ok, err := EtcdSnapshotGet(snap, "/outpost/a"); err != nil || !ok || string(v) != "3" {
		t.Fatalf("a = %q %v %v", v, ok, err)
	}
	if _, ok, err := EtcdSnapshotGet(snap, "/outpost/b"); err != nil || ok {
		t.Fatalf("deleted b found: %v %v", ok, err)
	}
	restored, _ := runEtcd(t, "new", "", func(c *EtcdConfig) {
		if err := EtcdRestore(snap, c.DataDir, c.Name, PeerURL(c.NodeIP, c.PeerPort)); err != nil {
			t.Fatal(err)
		}
	})
	rcli, err := restored.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer rcli.Close()
	r, err := rcli.Get(ctx, "/outpost/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range r.Kvs {
		got = append(got, string(kv.Key)+"="+string(kv.Value))
	}
	if strings.Join(got, ",") != "/outpost/a=3" {
		t.Fatalf("restored member holds %v", got)
	}
}
