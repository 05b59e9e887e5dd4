package images

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Images imports the archives in Bundled (the payload's: pause, CoreDNS, local-path), then
// those in Dir (the user's), all pinned, once containerd runs, before the kubelet needs the
// pause image. The user's come last, so an archive of theirs naming the same image wins.
// RecordFile keeps what was imported from archives without digests (see Record); "" keeps
// nothing.
type Images struct {
	Importer   Importer
	Bundled    string
	Dir        string
	RecordFile string
	Log        *slog.Logger
}

var _ component.Component = (*Images)(nil)

func (i *Images) Name() string               { return "images" }
func (i *Images) Init(context.Context) error { return nil }
func (i *Images) Stop(context.Context) error { return nil }

func (i *Images) Start(ctx context.Context) error {
	t := time.Now()
	refs, err := i.importAll(ctx)
	if err != nil {
		return err
	}
	i.Log.Info("imported images", "images", strings.Join(refs, ","), "took", time.Since(t).Round(time.Millisecond))
	return nil
}

// importAll imports every *.tar / *.tar.zst in Bundled, then in Dir, skipping those
// containerd holds already; it returns the image names.
func (i *Images) importAll(ctx context.Context) ([]string, error) {
	held := i.Importer.Held(ctx)
	rec := &Record{Archives: map[string]Archive{}}
	if i.RecordFile != "" {
		rec = LoadRecord(i.RecordFile)
	}
	var names []string
	seen := map[string]bool{}
	type undigested struct {
		path  string
		fi    os.FileInfo
		names []string
	}
	var imported []undigested
	named := map[string]int{} // archives naming each image
	for n, dir := range []string{i.Bundled, i.Dir} {
		files, err := Archives(dir)
		if err != nil {
			return names, err
		}
		for _, f := range files {
			seen[f] = true
			fi, err := os.Stat(f)
			if err != nil {
				return names, fmt.Errorf("image archive: %w", err)
			}
			refs, did, err := i.Importer.importFile(ctx, f, held, rec.known(f, fi))
			if err != nil && n == 0 {
				return names, err // the node cannot run without its own images
			} else if err != nil {
				// A user's broken archive must not keep the node down: say which and go on.
				i.Log.Error("image archive not imported", "file", f, "err", err)
				delete(rec.Archives, f)
				continue
			}
			var these []string
			digestless := false
			for _, r := range refs {
				these = append(these, r.Name)
				digestless = digestless || r.Digest == ""
				named[r.Name]++
			}
			names = append(names, these...)
			if did && digestless {
				imported = append(imported, undigested{f, fi, these})
			}
		}
	}
	rec.keepOnly(seen)
	if len(imported) > 0 {
		now := i.Importer.Held(ctx) // the digests containerd gave what it imported
	next:
		for _, u := range imported {
			// An image two archives name holds the last one's digest: recording it for the
			// other would skip that one even once the last is gone.
			for _, n := range u.names {
				if named[n] > 1 {
					delete(rec.Archives, u.path)
					continue next
				}
			}
			rec.set(u.path, u.fi, u.names, now)
		}
	}
	if i.RecordFile != "" {
		if err := rec.Save(i.RecordFile); err != nil {
			i.Log.Warn("image record not saved: the next start imports those archives again", "err", err)
		}
	}
	return names, nil
}
