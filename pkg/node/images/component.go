package images

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Archive is an image archive embedded in the binary, opened on demand.
type Archive struct {
	Name string
	Open Opener
}

// Images imports the embedded archives (pinned) and those in Dir once containerd runs, before
// the kubelet needs the pause image.
type Images struct {
	Importer Importer
	Dir      string
	Embedded func() ([]Archive, error)
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

// importAll imports the embedded archives (pinned), then every *.tar / *.tar.zst in Dir,
// skipping those containerd holds already; it returns the image names.
func (i *Images) importAll(ctx context.Context) ([]string, error) {
	embedded, err := i.Embedded()
	if err != nil {
		return nil, fmt.Errorf("embedded images: %w", err)
	}
	held := i.Importer.Held(ctx)
	var refs []string
	for _, img := range embedded {
		r, err := i.Importer.Import(ctx, img.Open, img.Name, true, held)
		if err != nil {
			return refs, err
		}
		refs = append(refs, r...)
	}
	files, err := Archives(i.Dir)
	if err != nil {
		return refs, err
	}
	for _, f := range files {
		r, err := i.Importer.ImportFile(ctx, f, held)
		if err != nil {
			// A user's broken archive must not keep the node down: say which and go on.
			i.Log.Error("image archive not imported", "file", f, "err", err)
			continue
		}
		refs = append(refs, r...)
	}
	return refs, nil
}
