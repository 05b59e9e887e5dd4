package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// kineOn starts a datastore on the SQLite file db and returns a raw etcd client of it. shared
// names the file as an external datastore (a DSN), as servers sharing a database are given it.
func kineOn(t *testing.T, db, sock string, shared bool) *clientv3.Client {
	t.Helper()
	cfg := Config{DBFile: db, Socket: sock, CompactInterval: time.Hour, CompactBatch: 1000, PollInterval: 50 * time.Millisecond}
	if shared {
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			t.Fatal(err)
		}
		cfg.Endpoint = "sqlite://" + db + "?" + sqliteParams("")
	}
	k := serveKine(t, cfg)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{k.EtcdEndpoint()}, DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// progressRev is the revision a watch-progress request to cli answers with: what the
// apiserver's watch cache takes as "everything up to here was sent".
func progressRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithProgressNotify())
	<-wch // created
	// kine drops a request that comes before the watch is in step: ask again, as the
	// apiserver does every 100 ms, until one is answered
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := cli.RequestProgress(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case r, ok := <-wch:
			if !ok {
				t.Fatal("no progress answer")
			}
			if r.IsProgressNotify() {
				return r.Header.Revision
			}
		case <-tick.C:
		}
	}
}

// Two kine instances on one database (servers sharing PostgreSQL), the second started while
// the first writes. kine's progress answers can then stay far behind the database for good (a
// revision only its own writes and an in-step poll move: about 1 start in 15 here); the
// apiserver's watch cache, which from etcd 3.5.13 takes a progress answer as "seen up to here",
// then never syncs its informers. So kine on an external datastore claims a version the
// apiserver asks no progress of, and a datastore of its own keeps 3.5.13 (consistent reads from
// the watch cache).
func TestSharedDatabaseProgress(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db", "state.db")
	a := kineOn(t, db, filepath.Join(dir, "a.sock"), true)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the first server writes while the second starts
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = a.Put(ctx, fmt.Sprintf("/registry/a/%d", i), "x")
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	b := kineOn(t, db, filepath.Join(dir, "b.sock"), true)
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	time.Sleep(time.Second) // both polls have seen every write
	got, err := a.Get(context.Background(), "/registry/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the second kine answers progress with revision %d; the database is at %d", progressRev(t, b), got.Header.Revision)
	if v := claimedVersion(t, b); !below3513(v) {
		t.Errorf("kine on an external datastore claims etcd %s: the apiserver would trust its progress answers", v)
	}
	own := kineOn(t, filepath.Join(dir, "own", "state.db"), filepath.Join(dir, "own.sock"), false)
	if v := claimedVersion(t, own); below3513(v) {
		t.Errorf("a datastore of its own claims etcd %s: the watch cache could not serve consistent reads", v)
	}
}

func claimedVersion(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	st, err := cli.Status(context.Background(), cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	return st.Version
}

// below3513: the apiserver's rule (storage/feature) for etcd 3.5 builds that lack a reliable
// progress answer.
func below3513(v string) bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	return major == 3 && minor == 5 && patch < 13
}
