package node

import (
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
		out[i] = images.Archive{Name: img.Name, Data: img.Data}
	}
	return out, nil
}
