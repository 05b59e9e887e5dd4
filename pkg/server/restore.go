package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Restore is a snapshot restore (--cluster-reset --cluster-reset-restore-path), checked and
// ready to apply: the snapshot and its bootstrap data opened with the token.
type Restore struct {
	from, sum string
	data      *bootstrap.Data
	done      bool // restored by an earlier start: nothing to do
	etcd      bool // an etcd snapshot (else SQLite)
}

// CheckRestore reads and checks everything a restore needs, writing nothing, so that bad
// input stops the server before it touches the data dir. nil when no restore is asked for.
func CheckRestore(c *config.Control) (*Restore, error) {
	from := c.RestoreFrom
	if from == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sum, err := fileSum(from)
	if err != nil {
		return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
	}
	if done, _ := os.ReadFile(c.Dirs.RestoreMarker()); strings.TrimSpace(string(done)) == sum {
		return &Restore{from: from, sum: sum, done: true}, nil
	}
	sqlite, err := datastore.IsSQLite(from)
	if err != nil {
		return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
	}
	get := func(key string) ([]byte, bool, error) { return datastore.SQLiteGet(ctx, from, key) }
	if sqlite {
		// On an etcd server the SQLite snapshot is restored, then migrated into a new etcd.
		if err := datastore.SQLiteCheck(ctx, from); err != nil {
			return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
		}
	} else {
		if err := datastore.EtcdSnapshotCheck(from); err != nil {
			return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
		}
		if !c.Etcd {
			return nil, fmt.Errorf("--cluster-reset-restore-path %s is an etcd snapshot: add --cluster-init to restore it into embedded etcd", from)
		}
		get = func(key string) ([]byte, bool, error) { return datastore.EtcdSnapshotGet(from, key) }
	}
	tok, err := restoreToken(c)
	if err != nil {
		return nil, err
	}
	blob, ok, err := get(bootstrap.Key(tok))
	if err != nil {
		return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("--cluster-reset-restore-path %s holds no bootstrap data for this token: give the --token of the cluster the snapshot was taken from", from)
	}
	data, err := bootstrap.Open(blob, tok)
	if err != nil {
		return nil, fmt.Errorf("--cluster-reset-restore-path %s: %w", from, err)
	}
	return &Restore{from: from, sum: sum, data: data, etcd: !sqlite}, nil
}

// restore applies s.Restore: the old datastore moves aside, whole (WAL and all), the
// snapshot takes its place, the bootstrap files are written, and a marker keeps a restart
// with the same flags from restoring again.
func (s *Server) restore() error {
	r := s.Restore
	if r == nil {
		return nil
	}
	if r.done {
		s.Log.Warn("this snapshot was restored already: starting on the datastore as it is now; remove --cluster-reset and --cluster-reset-restore-path", "snapshot", r.from)
		return nil
	}
	c := s.Cfg.Control
	db := c.Dirs.DBFile()
	stamp := fmt.Sprintf(".before-restore-%d", time.Now().Unix())
	previous := db + stamp
	if err := moveDBAside(db, stamp); err != nil {
		return fmt.Errorf("keep the old datastore: %w", err)
	}
	if c.Etcd {
		// The old member goes aside whole; the new one is this server alone.
		ed := c.Dirs.EtcdDataDir()
		if err := os.Rename(ed, ed+stamp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keep the old etcd data: %w", err)
		}
		previous = ed + stamp
	}
	if r.etcd {
		if err := datastore.EtcdRestore(r.from, c.Dirs.EtcdDataDir(), c.NodeName, datastore.PeerURL(c.NodeIP, 0)); err != nil {
			return err
		}
	} else if err := copyFile(r.from, c.Dirs.DBFile()); err != nil { // on etcd, migrated at start
		return fmt.Errorf("restore %s: %w", r.from, err)
	}
	if err := r.data.Write(c.Dirs.ServerDir(), pki.WriteFile); err != nil {
		return err
	}
	if err := pki.WriteFile(c.Dirs.RestoreMarker(), []byte(r.sum+"\n"), 0o600); err != nil {
		return err
	}
	if err := forgetPolicy(c.Dirs.PolicyMarker()); err != nil {
		return err
	}
	s.Log.Info("snapshot restored: starting as a single server on it", "snapshot", r.from, "previous", previous)
	return nil
}

// restoreToken is the token the bootstrap data is opened with: --token, else the stored one.
func restoreToken(c *config.Control) (token.Token, error) {
	if c.Token != "" {
		return token.Parse(c.Token)
	}
	t, err := (&token.File{Path: c.Dirs.TokenFile()}).Current()
	if err != nil {
		return token.Token{}, fmt.Errorf("--cluster-reset: give the cluster's --token (it opens the snapshot's bootstrap data): %w", err)
	}
	return t, nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile writes src to dst through a temporary file, synced, then renamed.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".restoring"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// moveDBAside renames a SQLite file with its WAL and shared-memory files to NAME+stamp; a
// file that is not there is skipped.
func moveDBAside(db, stamp string) error {
	for _, ext := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+ext, db+stamp+ext); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
