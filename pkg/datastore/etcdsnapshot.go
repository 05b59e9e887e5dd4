package datastore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"google.golang.org/protobuf/proto"
)

// EtcdSource is a snapshot source: the embedded etcd, through its snapshot API (a consistent
// copy of the backend, taken while writes go on).
type EtcdSource struct{ Endpoint string }

// SaveTo writes a snapshot to path.
func (s EtcdSource) SaveTo(ctx context.Context, path string) error {
	// The snapshot call waits as long as ctx allows for a connection: check first that etcd
	// answers at all, so a stopped server is named at once.
	cli, err := Client(s.Endpoint)
	if err != nil {
		return err
	}
	check, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = cli.MemberList(check)
	cancel()
	cli.Close()
	if err != nil {
		return fmt.Errorf("etcd at %s does not answer (is the server running? --runtime-dir): %w", s.Endpoint, err)
	}
	_, err = clientsnapshot.SaveWithVersion(ctx, nopLogger(), clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second, Logger: nopLogger()}, path)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	return nil
}

// sqliteMagic starts every SQLite file.
var sqliteMagic = []byte("SQLite format 3\x00")

// IsSQLite says whether path holds a SQLite file (else it may be an etcd snapshot).
func IsSQLite(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, _ := f.Read(head)
	return bytes.Equal(head[:n], sqliteMagic), nil
}

// EtcdSnapshotCheck verifies an etcd snapshot file: its integrity hash and that it holds
// etcd's key space.
func EtcdSnapshotCheck(path string) error {
	st, err := snapshot.NewV3(nopLogger()).Status(path)
	if err != nil {
		return fmt.Errorf("%s: not an etcd snapshot or an Outpost SQLite snapshot (%w)", path, err)
	}
	if st.Revision == 0 {
		return fmt.Errorf("%s: an empty etcd snapshot", path)
	}
	return nil
}

// EtcdSnapshotGet reads a key's current value straight from an etcd snapshot (etcd's bbolt
// backend: revisions in the key bucket, newest last; a deletion is a tombstone revision).
func EtcdSnapshotGet(path, key string) (value []byte, ok bool, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Key.Name())
		if b == nil {
			return fmt.Errorf("%s: no key bucket: not an etcd snapshot", path)
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if string(kv.Key) != key {
				continue
			}
			if !mvcc.IsTombstone(k) {
				value, ok = kv.Value, true
			}
			return nil
		}
		return nil
	})
	return value, ok, err
}

// EtcdRestore makes a new etcd data dir at dataDir from a snapshot, with this server as the
// only member. Revisions are bumped past any a client may have seen and marked compacted, so
// watches from before the restore start over instead of missing changes.
func EtcdRestore(snapshotPath, dataDir, name, peerURL string) error {
	err := snapshot.NewV3(nopLogger()).Restore(snapshot.RestoreConfig{SnapshotPath: snapshotPath, Name: name, OutputDataDir: dataDir,
		PeerURLs: []string{peerURL}, InitialCluster: name + "=" + peerURL, InitialClusterToken: "outpost",
		RevisionBump: 1_000_000, MarkCompacted: true})
	if err != nil {
		return fmt.Errorf("restore %s: %w", snapshotPath, err)
	}
	return nil
}
