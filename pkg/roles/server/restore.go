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
	"github.com/outpostk8s/outpost/pkg/control/policymarker"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Restore is a snapshot restore (--cluster-reset --cluster-reset-restore-path), checked and
// ready to apply: the snapshot and its bootstrap data opened with the token.
type Restore struct {
	from, sum string
	// file is the private copy of from that was checked and is restored: from itself could
	// be replaced in between.
	file string
	// made is the first directory making the copy created (the data dir itself, on a first
	// start): a refused restore removes it again while empty, so it leaves nothing behind.
	made, dir string
	data      *bootstrap.Data
	done      bool // restored by an earlier start: nothing to do
	etcd      bool // an etcd snapshot (else SQLite)
}

// checkRestore reads and checks everything a restore needs, so that bad input stops the
// server before it touches the datastore. It writes one thing: a private copy of the
// snapshot under DATA/server/db, what is checked and later restored (Discard drops it when
// the start ends first). nil when no restore is asked for.
func checkRestore(c *config.Control) (*Restore, error) {
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
	r := &Restore{from: from, dir: filepath.Dir(c.Dirs.DBFile())}
	r.made = firstMissing(r.dir)
	if r.file, r.sum, err = privateCopy(from, r.dir); err != nil {
		r.Discard()
		return nil, fmt.Errorf("--cluster-reset-restore-path: %w", err)
	}
	if err := r.check(ctx, c); err != nil {
		r.Discard()
		return nil, err
	}
	return r, nil
}

// check reads the snapshot and its bootstrap data from the private copy.
func (r *Restore) check(ctx context.Context, c *config.Control) error {
	sqlite, err := datastore.IsSQLite(r.file)
	if err != nil {
		return fmt.Errorf("--cluster-reset-restore-path %s: %w", r.from, err)
	}
	get := func(key string) ([]byte, bool, error) { return datastore.SQLiteGet(ctx, r.file, key) }
	if sqlite {
		// On an etcd server the SQLite snapshot is restored, then migrated into a new etcd.
		if err := datastore.SQLiteCheck(ctx, r.file); err != nil {
			return fmt.Errorf("--cluster-reset-restore-path %s: %w", r.from, err)
		}
	} else {
		if err := datastore.EtcdSnapshotCheck(r.file); err != nil {
			return fmt.Errorf("--cluster-reset-restore-path %s: %w", r.from, err)
		}
		if !c.Etcd {
			return fmt.Errorf("--cluster-reset-restore-path %s is an etcd snapshot: add --cluster-init to restore it into embedded etcd", r.from)
		}
		get = func(key string) ([]byte, bool, error) { return datastore.EtcdSnapshotGet(r.file, key) }
	}
	tok, err := restoreToken(c)
	if err != nil {
		return err
	}
	blob, key, err := bootstrap.Find(tok, get)
	if err != nil {
		return fmt.Errorf("--cluster-reset-restore-path %s: %w", r.from, err)
	}
	if key == "" {
		return fmt.Errorf("--cluster-reset-restore-path %s holds no bootstrap data for this token: give the --token of the cluster the snapshot was taken from", r.from)
	}
	if r.data, err = bootstrap.OpenAs(blob, tok, key); err != nil {
		return fmt.Errorf("--cluster-reset-restore-path %s: %w", r.from, err)
	}
	r.etcd = !sqlite
	return nil
}

// Discard removes the private copy of the snapshot; a start that ends before the restore
// calls it (nil and a restore done already are fine).
func (r *Restore) Discard() {
	if r == nil {
		return
	}
	if r.file != "" {
		// SQLite's own files beside it too, should a check have left any.
		for _, ext := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(r.file + ext)
		}
		r.file = ""
	}
	// The directories the copy needed, while nothing else is in them (after a restore the
	// datastore is).
	for d := r.dir; r.made != "" && strings.HasPrefix(d, r.made); d = filepath.Dir(d) {
		if os.Remove(d) != nil || d == r.made {
			break
		}
	}
	r.made = ""
}

// firstMissing is the first directory on the way down to dir that does not exist yet ("":
// dir exists).
func firstMissing(dir string) string {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			return missing
		}
		missing = d
		if d == filepath.Dir(d) {
			return missing
		}
	}
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
	defer r.Discard()
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
		if err := datastore.EtcdRestore(r.file, c.Dirs.EtcdDataDir(), c.NodeName, datastore.PeerURL(c.NodeIP, 0)); err != nil {
			return err
		}
	} else if err := os.Rename(r.file, c.Dirs.DBFile()); err != nil { // the checked copy, beside it; on etcd, migrated at start
		return fmt.Errorf("restore %s: %w", r.from, err)
	}
	if err := r.data.Write(c.Dirs.ServerDir(), pki.WriteFile); err != nil {
		return err
	}
	if err := pki.WriteFile(c.Dirs.RestoreMarker(), []byte(r.sum+"\n"), 0o600); err != nil {
		return err
	}
	if err := policymarker.Forget(c.Dirs.PolicyMarker()); err != nil {
		return err
	}
	s.Log.Info("snapshot restored: starting as a single server on it", "snapshot", r.from, "previous", previous)
	return nil
}

// restoreToken is the token the bootstrap data is opened with: --token, else the stored one.
func restoreToken(c *config.Control) (token.Token, error) {
	if c.Token != nil {
		return *c.Token, nil
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

// privateCopy copies src into dir (created 0700) under a new name, 0600 and synced, and
// returns its path and the SHA-256 of what it holds.
func privateCopy(src, dir string) (path, sum string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	out, err := os.CreateTemp(dir, ".restore-*.snapshot") // 0600
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", "", fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Name(), hex.EncodeToString(h.Sum(nil)), nil
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
