// Package snapshot keeps datastore snapshots in a directory, with k3s's etcd-snapshot names
// and rules: a snapshot is the file NAME-NODE-UNIXSECONDS, listed newest first, pruned to the
// newest N of a name. Taking one is the datastore's business (Source): VACUUM INTO for
// SQLite, the snapshot API for etcd.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// k3s's default names: scheduled snapshots, and those `etcd-snapshot save` takes.
const (
	ScheduledName = "etcd-snapshot"
	OnDemandName  = "on-demand"
)

// Source writes a consistent copy of the datastore to a path that does not exist yet.
type Source interface {
	SaveTo(ctx context.Context, path string) error
}

// Store is the snapshot directory.
type Store struct {
	Dir string
	Now func() time.Time // time.Now when nil
}

// Info describes one snapshot.
type Info struct {
	Name    string // file name
	Path    string
	Size    int64
	Created time.Time
}

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ValidName is a snapshot name prefix: no path separators, nothing hidden.
func ValidName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || len(name) > 128 {
		return fmt.Errorf("snapshot name %q: use letters, digits, '-', '_' or '.' (no '/', not starting with '.')", name)
	}
	return nil
}

// Save takes a snapshot named NAME-NODE-UNIXSECONDS. It is written beside its final name and
// renamed when complete and synced, so a crash never leaves a partial snapshot under a
// snapshot's name.
func (s Store) Save(ctx context.Context, src Source, name, node string) (Info, error) {
	if err := ValidName(name); err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("snapshot dir: %w", err)
	}
	created := s.now()
	file := fmt.Sprintf("%s-%s-%d", name, node, created.Unix())
	final := filepath.Join(s.Dir, file)
	if _, err := os.Stat(final); err == nil {
		return Info{}, fmt.Errorf("snapshot %s exists already (one per second per name)", file)
	}
	tmp := filepath.Join(s.Dir, ".partial-"+file)
	os.Remove(tmp)
	if err := src.SaveTo(ctx, tmp); err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	if err := syncAndChmod(tmp); err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	if d, err := os.Open(s.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	st, err := os.Stat(final)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	return Info{Name: file, Path: final, Size: st.Size(), Created: created}, nil
}

func syncAndChmod(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// List returns the snapshots, newest first. A missing dir holds none.
func (s Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		created := fi.ModTime()
		if ts, ok := stamp(e.Name()); ok {
			created = ts
		}
		out = append(out, Info{Name: e.Name(), Path: filepath.Join(s.Dir, e.Name()), Size: fi.Size(), Created: created})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// stamp reads the UNIXSECONDS suffix of a snapshot name.
func stamp(name string) (time.Time, bool) {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// Delete removes the named snapshots (file names as List gives them). A name that is not a
// snapshot in the dir is an error, after the others are deleted.
func (s Store) Delete(names ...string) error {
	var errs []error
	for _, n := range names {
		if ValidName(n) != nil {
			errs = append(errs, fmt.Errorf("%q is not a snapshot name", n))
			continue
		}
		if err := os.Remove(filepath.Join(s.Dir, n)); err != nil {
			errs = append(errs, fmt.Errorf("snapshot %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Prune keeps the newest keep snapshots whose names start with NAME- and deletes the rest,
// returning what it deleted. Snapshots of other names are not touched.
func (s Store) Prune(name string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("retention %d: keep at least 1 snapshot", keep)
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var deleted []string
	kept := 0
	for _, in := range all {
		if !strings.HasPrefix(in.Name, name+"-") {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		if err := os.Remove(in.Path); err != nil {
			return deleted, fmt.Errorf("prune %s: %w", in.Name, err)
		}
		deleted = append(deleted, in.Name)
	}
	return deleted, nil
}
