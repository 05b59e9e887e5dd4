package images

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Record remembers the archives that do not name their images' digests (docker save, podman
// save): each file's size and modification time and the digest containerd gave each image.
// A restart that finds such a file unchanged, and containerd holding those digests pinned,
// skips it as it skips an OCI archive whose index names its digests; without the record every
// start imported them again (250 MB of test images: 9 s before the kubelet started). k3s offers
// the same as an opt-in (.cache.json, size and time only); here containerd must also still hold
// what the import made, so a pruned or re-tagged image is imported again.
type Record struct {
	Archives map[string]Archive `json:"archives"`
}

// Archive is one imported file.
type Archive struct {
	Size    int64             `json:"size"`
	ModTime time.Time         `json:"modTime"`
	Images  map[string]string `json:"images"` // name → manifest digest in containerd
}

// LoadRecord reads the record; a missing or unreadable one is empty (everything is imported).
func LoadRecord(path string) *Record {
	r := &Record{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, r) // damaged: start over, the imports rebuild it
	}
	if r.Archives == nil {
		r.Archives = map[string]Archive{}
	}
	return r
}

// known gives the digests recorded for the file when it is unchanged since, else nil.
func (r *Record) known(path string, fi os.FileInfo) map[string]string {
	a, ok := r.Archives[path]
	if !ok || a.Size != fi.Size() || !a.ModTime.Equal(fi.ModTime()) {
		return nil
	}
	return a.Images
}

// set records an import of the file: the digests containerd holds for its images now.
func (r *Record) set(path string, fi os.FileInfo, names []string, held Present) {
	a := Archive{Size: fi.Size(), ModTime: fi.ModTime(), Images: map[string]string{}}
	for _, n := range names {
		if h, ok := held[n]; ok && h.Digest != "" {
			a.Images[n] = h.Digest
		}
	}
	r.Archives[path] = a
}

// keepOnly drops the files no longer there.
func (r *Record) keepOnly(paths map[string]bool) {
	for p := range r.Archives {
		if !paths[p] {
			delete(r.Archives, p)
		}
	}
}

// Save writes the record whole (temp file and rename): a crash leaves the old one or none.
func (r *Record) Save(path string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("image record: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("image record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("image record: %w", err)
	}
	return nil
}
