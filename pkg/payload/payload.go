// Package payload carries the bundled binaries (containerd, ctr, shim, runc, CNI plugins) and
// image archives inside the outpost binary and unpacks them into the data dir.
package payload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Assets is the embedded payload of the architecture built for (assets/GOARCH, embedded by
// assets_GOARCH.go); tests substitute their own FS.
func Assets() fs.FS {
	sub, _ := fs.Sub(assets, assetsDir)
	return sub
}

// ErrNoPayload means the binary was built without `make build`.
var ErrNoPayload = errors.New("this outpost binary has no bundled containerd/runc/CNI payload: build it with `make build`")

const (
	archiveName = "payload.tar.zst"
	// hashName holds the archive's sha256 (hex), written by scripts/build-payload.sh.
	hashName = "payload.tar.zst.sha256"
	// manifestName lists "sha256  bin/NAME" for every file; extraction verifies each.
	manifestName = "bin/SHA256SUMS"
)

// MulticallNames are links in the bin dir back to the outpost binary itself.
var MulticallNames = []string{"kubectl"}

// Aliases are names of payload binaries that answer to more than one name: the payload's
// containerd is also ctr when called so (scripts/payload/containerd). A link is made for each
// alias the archive does not carry as a file of its own.
var Aliases = map[string]string{"ctr": "containerd"}

// Extract unpacks the payload to root/<hash> unless it is already there, points root/current
// at it, and returns the bin dir. It writes into a temp dir, verifies every file against the
// manifest, then renames: a crash leaves either nothing or a complete payload.
func Extract(fsys fs.FS, root, self string) (string, error) {
	// The build records the archive's sha256 beside it: a warm start then finds its dir by
	// name without reading (and keeping resident) the 30 MB archive.
	hash, err := recordedHash(fsys)
	if err != nil {
		return "", err
	}
	var raw []byte
	if hash == "" || !exists(filepath.Join(root, hash, manifestName)) {
		if raw, err = fs.ReadFile(fsys, archiveName); errors.Is(err, fs.ErrNotExist) {
			return "", ErrNoPayload
		} else if err != nil {
			return "", fmt.Errorf("read embedded payload: %w", err)
		}
		sum := sha256.Sum256(raw)
		got := hex.EncodeToString(sum[:])[:16]
		if hash != "" && got != hash {
			return "", fmt.Errorf("the embedded payload does not match its recorded checksum (%s, want %s): this outpost binary is damaged; re-download it", got, hash)
		}
		hash = got
	}
	target := filepath.Join(root, hash)
	if _, err := os.Stat(filepath.Join(target, manifestName)); err != nil {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", root, err)
		}
		tmp, err := os.MkdirTemp(root, ".tmp-"+hash+"-")
		if err != nil {
			return "", fmt.Errorf("unpack payload: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := untar(raw, tmp); err != nil {
			return "", fmt.Errorf("unpack payload: %w", err)
		}
		if err := verify(tmp); err != nil {
			return "", fmt.Errorf("verify payload: %w", err)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return "", err
		}
		_ = os.RemoveAll(target) // a partial dir from an older, crashed version
		if err := os.Rename(tmp, target); err != nil {
			return "", fmt.Errorf("install payload: %w", err)
		}
	}
	if err := relink(filepath.Join(root, "current"), hash); err != nil {
		return "", err
	}
	bin := filepath.Join(target, "bin")
	for alias, to := range Aliases {
		if fi, err := os.Lstat(filepath.Join(bin, alias)); err == nil && fi.Mode().IsRegular() {
			continue
		}
		if err := relink(filepath.Join(bin, alias), to); err != nil {
			return "", err
		}
	}
	for _, n := range MulticallNames {
		if err := relink(filepath.Join(bin, n), self); err != nil {
			return "", err
		}
	}
	return bin, nil
}

// recordedHash reads the build's checksum of the archive, shortened to the dir name; "" when
// the build wrote none.
func recordedHash(fsys fs.FS) (string, error) {
	b, err := fs.ReadFile(fsys, hashName)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read embedded payload checksum: %w", err)
	}
	h := strings.TrimSpace(string(b))
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("embedded payload checksum %q is not a sha256: this outpost binary is damaged; re-download it", h)
	}
	return h[:16], nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// relink points link at dest atomically (symlink beside it, then rename over it).
func relink(link, dest string) error {
	if cur, err := os.Readlink(link); err == nil && cur == dest {
		return nil
	}
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(dest, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

func untar(raw []byte, dir string) error {
	zr, err := zstd.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if strings.HasPrefix(name, "..") || path.IsAbs(name) {
			return fmt.Errorf("unsafe path %q in payload", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

func verify(dir string) error {
	f, err := os.Open(filepath.Join(dir, manifestName))
	if err != nil {
		return fmt.Errorf("no manifest: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		want, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), "  ")
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "bin", name))
		if err != nil {
			return err
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			return fmt.Errorf("%s: checksum mismatch", name)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("empty manifest")
	}
	return sc.Err()
}

// Image is one embedded image archive, opened on demand: a start that finds it imported
// already reads no more of it than its index.
type Image struct {
	Name string
	Open func() (fs.File, error)
}

// Images lists the embedded image archives.
func Images(fsys fs.FS) ([]Image, error) {
	entries, err := fs.ReadDir(fsys, "images")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []Image
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".tar") {
			continue
		}
		name := "images/" + e.Name()
		out = append(out, Image{Name: e.Name(), Open: func() (fs.File, error) { return fsys.Open(name) }})
	}
	return out, nil
}
