package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/node/images"
	"github.com/outpostk8s/outpost/pkg/payload"
)

// imageImport imports the embedded and user-supplied image archives once containerd runs,
// before the kubelet needs the pause image.
type imageImport struct {
	im  images.Importer
	dir string
	log *slog.Logger
}

func (i *imageImport) Name() string               { return "images" }
func (i *imageImport) Init(context.Context) error { return nil }
func (i *imageImport) Stop(context.Context) error { return nil }

func (i *imageImport) Start(ctx context.Context) error {
	t := time.Now()
	embedded, err := payload.Images(payload.Assets())
	if err != nil {
		return fmt.Errorf("embedded images: %w", err)
	}
	var refs []string
	for _, img := range embedded {
		data := img.Data
		r, err := i.im.Import(ctx, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, img.Name, true)
		if err != nil {
			return err
		}
		refs = append(refs, r...)
	}
	files, err := images.Archives(i.dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		r, err := i.im.ImportFile(ctx, f)
		if err != nil {
			// A user's broken archive must not keep the node down: say which and go on.
			i.log.Error("image archive not imported", "file", f, "err", err)
			continue
		}
		refs = append(refs, r...)
	}
	i.log.Info("imported images", "images", strings.Join(refs, ","), "took", time.Since(t).Round(time.Millisecond))
	return nil
}
