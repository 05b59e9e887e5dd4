// Package images imports image archives into containerd's CRI namespace without a registry:
// the embedded pause and CoreDNS archives and every archive in agent/images/.
package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
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

// Import loads one archive (plain tar, or zstd-compressed when the name ends in .zst) and pins
// every image it names. It returns the image names.
func (im Importer) Import(ctx context.Context, r io.Reader, name string, pin bool) ([]string, error) {
	if strings.HasSuffix(name, ".zst") {
		dec, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer dec.Close()
		r = dec
	}
	out, err := im.ctr(ctx, r, "images", "import", "-")
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	refs := parseImported(out)
	if pin {
		for _, ref := range refs {
			if _, err := im.ctr(ctx, nil, "images", "label", ref, PinnedLabel); err != nil {
				return refs, fmt.Errorf("pin %s: %w", ref, err)
			}
		}
	}
	return refs, nil
}

// parseImported reads ctr's "unpacking NAME (sha256:…)…done" / "NAME saved" lines.
func parseImported(out []byte) []string {
	var refs []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var ref string
		switch {
		case len(f) >= 2 && f[0] == "unpacking":
			ref = f[1]
		case len(f) == 2 && f[1] == "saved":
			ref = f[0]
		}
		if ref != "" && !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	return refs
}

// ImportAll imports the embedded archives (pinned) and then every *.tar / *.tar.zst in dir.
func (im Importer) ImportAll(ctx context.Context, embedded fs.FS, embeddedNames []string, dir string) ([]string, error) {
	var all []string
	for _, n := range embeddedNames {
		f, err := embedded.Open(n)
		if err != nil {
			return all, fmt.Errorf("embedded image %s: %w", n, err)
		}
		refs, err := im.Import(ctx, f, n, true)
		f.Close()
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
		f, err := os.Open(p)
		if err != nil {
			return all, fmt.Errorf("image archive: %w", err)
		}
		refs, err := im.Import(ctx, f, p, true)
		f.Close()
		if err != nil {
			return all, err
		}
		all = append(all, refs...)
	}
	return all, nil
}

// ImportFile imports one archive file from disk, pinned.
func (im Importer) ImportFile(ctx context.Context, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image archive: %w", err)
	}
	defer f.Close()
	return im.Import(ctx, f, path, true)
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
