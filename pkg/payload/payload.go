// Package payload is the inner part of the file a user downloads: one zstd tar holding the
// outpost program itself, the bundled binaries (containerd with ctr, shim, runc, CNI plugins,
// crictl, the GPU helper) and the image archives. The small outer binary (cmd/outpost-outer)
// carries it, unpacks it once per version into DATA/data/<hash> and runs bin/outpost from there;
// one zstd stream over every part compresses far better than each part on its own (their Go
// code repeats), which is what keeps the download small.
package payload

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPayload means the running outpost was not started from an unpacked payload.
var ErrNoPayload = errors.New("this outpost binary has no bundled containerd/runc/CNI payload beside it: run the outpost file `make build` writes to bin/ (or the one you downloaded), which unpacks it")

const (
	// ManifestName is the payload's first entry: "sha256 size path" for each file and
	// "link target path" for each symlink. Unpacking and checks go by it.
	ManifestName = "MANIFEST"
	// Program is the inner outpost binary's path in the payload.
	Program = "bin/outpost"
)

// stamp is the modification time every unpacked file gets. A file whose size or time
// differs was changed after unpacking, and only then is it hashed: a warm start stats the
// payload instead of reading its 400 MB.
func stamp() time.Time { return time.Unix(1, 0) }

// Entry is one manifest line.
type Entry struct {
	Path   string
	Sum    string // sha256, hex; "" for a link
	Size   int64
	Target string // a link's target, a name in the same dir
}

// ParseManifest reads a manifest, refusing paths that would leave the payload dir.
func ParseManifest(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("manifest line %d: want 3 fields, got %d", n, len(f))
		}
		e := Entry{Path: f[2]}
		if !fs.ValidPath(e.Path) || e.Path == "." {
			return nil, fmt.Errorf("manifest line %d: unsafe path %q", n, e.Path)
		}
		if f[0] == "link" {
			e.Target = f[1]
			if strings.Contains(e.Target, "/") || e.Target == ".." || e.Target == "." {
				return nil, fmt.Errorf("manifest line %d: link target %q is not a name in the same dir", n, e.Target)
			}
		} else {
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || size < 0 || !isSum(f[0]) {
				return nil, fmt.Errorf("manifest line %d: want \"sha256 size path\"", n)
			}
			e.Sum, e.Size = f[0], size
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("empty manifest")
	}
	return out, nil
}

// isSum says whether s is a sha256 in lower-case hex.
func isSum(s string) bool { return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" }

func readManifest(dir string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseManifest(f)
}

// Check says whether dir still holds the payload as unpacked: every file present with its size
// and the unpack stamp, every link in place. A file that fails that is hashed, and only a
// real difference is an error, naming the fix. check-config runs Verify, which hashes all.
func Check(dir string) error { return check(dir, false) }

// Verify hashes every file of the unpacked payload against its manifest.
func Verify(dir string) error { return check(dir, true) }

func check(dir string, full bool) error {
	// What runs from here must be no one else's to change: the dir that holds it, it, and
	// every file, owned by root or this user and writable by no one else.
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "bin")} {
		fi, err := os.Lstat(d)
		if err != nil {
			return damaged(dir, err)
		}
		if err := trusted(d, fi); err != nil {
			return err
		}
	}
	ents, err := readManifest(dir)
	if err != nil {
		return damaged(dir, err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Path)
		if e.Target != "" {
			if got, err := os.Readlink(p); err != nil || got != e.Target {
				return damaged(dir, fmt.Errorf("%s is not a link to %s", e.Path, e.Target))
			}
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return damaged(dir, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != e.Size {
			return damaged(dir, fmt.Errorf("%s: size %d, want %d", e.Path, fi.Size(), e.Size))
		}
		if err := trusted(p, fi); err != nil {
			return err
		}
		if !full && fi.ModTime().Equal(stamp()) {
			continue
		}
		if err := hashFile(p, e.Sum); err != nil {
			return damaged(dir, fmt.Errorf("%s: %w", e.Path, err))
		}
	}
	return nil
}

// trusted refuses a file or dir owned by another user, or writable by others.
func trusted(p string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, neither root nor you: outpost runs nothing from it; delete it, or unpack as its owner", p, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by others (mode %04o): outpost runs nothing from it; delete it and run outpost again", p, fi.Mode().Perm())
	}
	return nil
}

func damaged(dir string, err error) error {
	return fmt.Errorf("the unpacked payload in %s is damaged (%w): delete %s and run outpost again, which unpacks it afresh", dir, err, dir)
}

// Locate is the inner side: the payload dir holding self (DATA/data/<hash>/bin/outpost) and
// its bin dir. When that dir lies in root (DATA/data), root/current is pointed at it, so tools
// and users find the binaries of the version that last ran.
func Locate(self, root string) (string, error) {
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	dir := filepath.Dir(filepath.Dir(self))
	if !unpacked(dir) {
		return "", ErrNoPayload
	}
	if root != "" {
		if r, err := filepath.EvalSymlinks(root); err == nil && r == filepath.Dir(dir) {
			if err := relink(filepath.Join(root, "current"), filepath.Base(dir)); err != nil {
				return "", err
			}
		}
	}
	return filepath.Join(dir, "bin"), nil
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

// ImagesDir is where the image archives of the payload whose bin dir is binDir lie.
func ImagesDir(binDir string) string { return filepath.Join(filepath.Dir(binDir), "images") }
