// Package embedded holds the payload archive inside the outer binary (cmd/outpost-outer). Only
// the outer binary links it: the inner one is in the archive.
package embedded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/outpostk8s/outpost/pkg/payload"
)

const (
	archiveName = "payload.tar.zst"
	// sumName holds the archive's sha256 (hex), written by scripts/pack-payload.sh: a warm start
	// finds the unpacked dir by name without reading the archive.
	sumName = "payload.tar.zst.sha256"
)

// Archive is the payload built into this binary.
func Archive() (payload.Archive, error) {
	return archive(assets, assetsDir)
}

func archive(fsys fs.FS, dir string) (payload.Archive, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return payload.Archive{}, err
	}
	raw, err := fs.ReadFile(sub, sumName)
	if errors.Is(err, fs.ErrNotExist) {
		return payload.Archive{}, errors.New("this outpost file was built without its payload: build it with `make build`")
	} else if err != nil {
		return payload.Archive{}, fmt.Errorf("read the payload checksum: %w", err)
	}
	open := func() (io.ReadCloser, error) { return sub.Open(archiveName) }
	a := payload.Archive{Sum: strings.TrimSpace(string(raw)), Open: open}
	return a, a.Valid()
}
