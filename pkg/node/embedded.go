package node

import (
	"io"

	"github.com/outpostk8s/outpost/pkg/node/images"
	"github.com/outpostk8s/outpost/pkg/payload"
)

// EmbeddedImages are the image archives of the payload whose bin dir is binDir (pause,
// CoreDNS, local-path).
func EmbeddedImages(binDir string) ([]images.Archive, error) {
	imgs, err := payload.Images(binDir)
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

// EmbeddedImagesIn is EmbeddedImages for binDir, as Node.Embedded wants it.
func EmbeddedImagesIn(binDir string) func() ([]images.Archive, error) {
	return func() ([]images.Archive, error) { return EmbeddedImages(binDir) }
}
