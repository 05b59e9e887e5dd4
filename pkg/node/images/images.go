// Package images imports image archives into containerd's CRI namespace without a registry:
// the embedded pause and CoreDNS archives and every archive in agent/images/.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/outpostk8s/outpost/pkg/supervisor"
)

// Namespace is containerd's namespace for Kubernetes.
const Namespace = "k8s.io"

// PinnedLabel stops the kubelet's image garbage collection from removing an image.
const PinnedLabel = "io.cri-containerd.pinned=pinned"

// Runner runs a command with stdin and returns its combined output; tests fake it.
type Runner func(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error)

// Exec is the real Runner.
func Exec(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = supervisor.ChildEnv() // no OUTPOST_TOKEN for ctr
	cmd.Stdin = stdin
	return cmd.CombinedOutput()
}

// Importer feeds archives to the bundled ctr.
type Importer struct {
	Ctr    string // path of ctr
	Socket string // containerd socket
	Run    Runner
}

func (im Importer) ctr(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	full := append([]string{"--address", im.Socket, "--namespace", Namespace}, args...)
	out, err := im.Run(ctx, stdin, im.Ctr, full...)
	if err != nil {
		return out, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Opener opens an archive; it is called twice (names first, then the import).
type Opener func() (io.ReadCloser, error)

// Present is what containerd holds: image name → manifest digest and whether it is pinned.
type Present map[string]Held

// Held is one image containerd holds.
type Held struct {
	Digest string
	Pinned bool
}

// Held lists the images containerd holds (one `ctr images ls`), so a restart imports only what
// changed. On error it returns none: everything is imported, as before.
func (im Importer) Held(ctx context.Context) Present {
	out, err := im.ctr(ctx, nil, "images", "ls")
	if err != nil {
		return Present{}
	}
	return parseList(out)
}

// parseList reads `ctr images ls`: REF TYPE DIGEST SIZE(with a space) PLATFORMS LABELS.
func parseList(out []byte) Present {
	p := Present{}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue
		}
		p[f[0]] = Held{Digest: f[2], Pinned: strings.Contains(f[len(f)-1], PinnedLabel)}
	}
	return p
}

// current reports whether containerd holds every image of the archive at the archive's digest
// (and pinned, when it must be).
func (p Present) current(refs []ref, pin bool) bool {
	if len(refs) == 0 {
		return false
	}
	for _, r := range refs {
		h, ok := p[r.Name]
		if !ok || r.Digest == "" || h.Digest != r.Digest || (pin && !h.Pinned) {
			return false
		}
	}
	return true
}

// Import loads one archive (plain tar, or zstd-compressed when the name ends in .zst) and pins
// every image it names, unless containerd holds them all at the archive's digests already
// (held may be nil: import). It returns the image names, read from the archive itself.
func (im Importer) Import(ctx context.Context, open Opener, name string, pin bool, held Present) ([]string, error) {
	refs, _, err := im.importRefs(ctx, open, name, pin, held, nil)
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	return names, err
}

// importRefs is Import, returning the archive's refs and whether it imported. known gives the
// digests an earlier import of this unchanged archive got, for images it names without one.
func (im Importer) importRefs(ctx context.Context, open Opener, name string, pin bool, held Present, known map[string]string) ([]ref, bool, error) {
	refs, err := withArchive(open, name, archiveRefs)
	if err != nil {
		return nil, false, fmt.Errorf("image archive %s: %w", name, err)
	}
	names := make([]string, len(refs))
	check := make([]ref, len(refs))
	for i, r := range refs {
		names[i] = r.Name
		if check[i] = r; r.Digest == "" {
			check[i].Digest = known[r.Name]
		}
	}
	if held.current(check, pin) {
		return refs, false, nil
	}
	_, err = withArchive(open, name, func(r io.Reader) ([]ref, error) {
		_, err := im.ctr(ctx, r, "images", "import", "-")
		return nil, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("import %s: %w", name, err)
	}
	if pin {
		for _, n := range names {
			if _, err := im.ctr(ctx, nil, "images", "label", n, PinnedLabel); err != nil {
				return refs, true, fmt.Errorf("pin %s: %w", n, err)
			}
		}
	}
	// The names now point here: a later archive with the same name at another digest must be
	// imported (the last one wins, as without the skip), not skipped on the stale listing.
	if held != nil {
		for _, r := range refs {
			held[r.Name] = Held{Digest: r.Digest, Pinned: pin}
		}
	}
	return refs, true, nil
}

func withArchive(open Opener, name string, f func(io.Reader) ([]ref, error)) ([]ref, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if strings.HasSuffix(name, ".zst") {
		dec, err := zstd.NewReader(rc)
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		r = dec
	}
	return f(r)
}

// ref is one image an archive carries; Digest is its manifest's, "" where the archive does
// not say (docker save).
type ref struct{ Name, Digest string }

// archiveRefs reads the images an archive carries: OCI index.json annotations, or the
// RepoTags of a docker-save manifest.json. On a seekable archive it skips the layers.
func archiveRefs(r io.Reader) ([]ref, error) {
	tr := tar.NewReader(r)
	var refs []ref
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "index.json":
			var idx struct {
				Manifests []struct {
					Digest      string            `json:"digest"`
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("index.json: %w", err)
			}
			for _, m := range idx.Manifests {
				if n := m.Annotations["io.containerd.image.name"]; n != "" {
					refs = append(refs, ref{n, m.Digest})
				} else if n := m.Annotations["org.opencontainers.image.ref.name"]; strings.ContainsAny(n, "/:") {
					refs = append(refs, ref{n, m.Digest})
				}
			}
		case "manifest.json":
			var ms []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&ms); err == nil {
				for _, m := range ms {
					for _, t := range m.RepoTags {
						refs = append(refs, ref{Name: t})
					}
				}
			}
		}
	}
	return dedupe(refs), nil
}

func dedupe(in []ref) []ref {
	seen := map[string]bool{}
	var out []ref
	for _, r := range in {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r)
		}
	}
	return out
}

// importFile imports one archive file from disk, pinned, unless held has it.
func (im Importer) importFile(ctx context.Context, path string, held Present, known map[string]string) ([]ref, bool, error) {
	return im.importRefs(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, path, true, held, known)
}

// Archives lists the image archives in dir, sorted; a missing dir has none.
func Archives(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read image dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, ".tar") || strings.HasSuffix(n, ".tar.zst")) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}
