package images

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Images imports the archives in Bundled (the payload's: pause, CoreDNS, local-path), then
// those in Dir (the user's), all pinned, once containerd runs, before the kubelet needs the
// pause image. The user's come last, so an archive of theirs naming the same image wins.
type Images struct {
	Importer Importer
	Bundled  string
	Dir      string
	Log      *slog.Logger
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
	var refs []string
	for n, dir := range []string{i.Bundled, i.Dir} {
		files, err := Archives(dir)
		if err != nil {
			return refs, err
		}
		for _, f := range files {
			r, err := i.Importer.ImportFile(ctx, f, held)
			if err != nil && n == 0 {
				return refs, err // the node cannot run without its own images
			} else if err != nil {
				// A user's broken archive must not keep the node down: say which and go on.
				i.Log.Error("image archive not imported", "file", f, "err", err)
				continue
			}
			refs = append(refs, r...)
		}
	}
	return refs, nil
}
