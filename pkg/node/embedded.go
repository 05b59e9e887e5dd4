package node

import (
	"io"

	"github.com/outpostk8s/outpost/pkg/node/images"
	"github.com/outpostk8s/outpost/pkg/payload"
)

// EmbeddedImages are the image archives built into this binary (pause, CoreDNS).
func EmbeddedImages() ([]images.Archive, error) {
	imgs, err := payload.Images(payload.Assets())
	if err != nil {
		return nil, err
	}
	out := make([]images.Archive, len(imgs))
	for i, img := range imgs {
		open := img.Open
		out[i] = images.Archive{Name: img.Name, Open: func() (io.ReadCloser, error) { return open() }}
	}
	return out, nil
}
