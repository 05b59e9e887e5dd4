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
	"io/fs"
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

// Import loads one archive (plain tar, or zstd-compressed when the name ends in .zst) and pins
// every image it names. It returns the image names, read from the archive itself.
func (im Importer) Import(ctx context.Context, open Opener, name string, pin bool) ([]string, error) {
	refs, err := withArchive(open, name, archiveRefs)
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w", name, err)
	}
	_, err = withArchive(open, name, func(r io.Reader) ([]string, error) {
		_, err := im.ctr(ctx, r, "images", "import", "-")
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	if pin {
		for _, ref := range refs {
			if _, err := im.ctr(ctx, nil, "images", "label", ref, PinnedLabel); err != nil {
				return refs, fmt.Errorf("pin %s: %w", ref, err)
			}
		}
	}
	return refs, nil
}

func withArchive(open Opener, name string, f func(io.Reader) ([]string, error)) ([]string, error) {
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

// archiveRefs reads the image names an archive carries: OCI index.json annotations, or the
// RepoTags of a docker-save manifest.json.
func archiveRefs(r io.Reader) ([]string, error) {
	tr := tar.NewReader(r)
	var refs []string
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
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("index.json: %w", err)
			}
			for _, m := range idx.Manifests {
				if n := m.Annotations["io.containerd.image.name"]; n != "" {
					refs = append(refs, n)
				} else if n := m.Annotations["org.opencontainers.image.ref.name"]; strings.ContainsAny(n, "/:") {
					refs = append(refs, n)
				}
			}
		case "manifest.json":
			var ms []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&ms); err == nil {
				for _, m := range ms {
					refs = append(refs, m.RepoTags...)
				}
			}
		}
	}
	return dedupe(refs), nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ImportAll imports the embedded archives (pinned) and then every *.tar / *.tar.zst in dir.
func (im Importer) ImportAll(ctx context.Context, embedded fs.FS, embeddedNames []string, dir string) ([]string, error) {
	var all []string
	for _, n := range embeddedNames {
		name := n
		refs, err := im.Import(ctx, func() (io.ReadCloser, error) { return embedded.Open(name) }, n, true)
		if err != nil {
			return all, err
		}
		all = append(all, refs...)
	}
	files, err := Archives(dir)
	if err != nil {
		return all, err
	}
	for _, p := range files {
		refs, err := im.ImportFile(ctx, p)
		if err != nil {
			return all, err
		}
		all = append(all, refs...)
	}
	return all, nil
}

// ImportFile imports one archive file from disk, pinned.
func (im Importer) ImportFile(ctx context.Context, path string) ([]string, error) {
	return im.Import(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, path, true)
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
