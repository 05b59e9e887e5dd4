package payload

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/klauspost/compress/zstd"
)

// Archive is a payload as the outer binary carries it: the zstd tar and the sha256 the build
// recorded for it.
type Archive struct {
	Sum  string // sha256 of the compressed archive, hex
	Open func() (io.ReadCloser, error)
}

// maxWindow bounds the zstd window the decoder accepts, and so the memory an unpack takes
// (about 340 MB at its peak, once per version): the build compresses with --long=28 (256 MiB),
// so that repeats across the bundled binaries are found.
const maxWindow = 1 << 28

// Valid says whether the recorded checksum is a sha256.
func (a Archive) Valid() error {
	if !isSum(a.Sum) {
		return fmt.Errorf("the recorded payload checksum %q is not a sha256: this outpost file is damaged; re-download it", a.Sum)
	}
	return nil
}

// Dir is where the archive lives unpacked under root (DATA/data).
func (a Archive) Dir(root string) string { return filepath.Join(root, a.Sum[:16]) }

// Unpacked says whether root holds the archive unpacked (not whether it is intact: Check).
func (a Archive) Unpacked(root string) bool { return unpacked(a.Dir(root)) }

// unpacked: a payload dir is complete once it has its manifest (it is renamed into place whole).
func unpacked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ManifestName))
	return err == nil
}

// Install returns the dir under root holding the archive unpacked: checked when it is there
// already, else unpacked into a temp dir, every file and the archive itself verified and
// synced, and renamed into place, so a crash, a power cut or a damaged download leaves no
// payload that could run. One process unpacks at a time (a lock in root); the others then
// find its dir.
func Install(a Archive, root string) (string, error) {
	if err := a.Valid(); err != nil {
		return "", err
	}
	dir := a.Dir(root)
	if unpacked(dir) {
		return dir, Check(dir)
	}
	// The data dir, when this makes it, is as private as the inner program makes it.
	if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(root), err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", root, err)
	}
	unlock, err := lock(filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if unpacked(dir) {
		return dir, Check(dir) // another run unpacked it while this one waited
	}
	// Temp dirs of runs that were killed while unpacking: none is in use under the lock.
	if stale, _ := filepath.Glob(filepath.Join(root, ".tmp-*")); len(stale) > 0 {
		for _, d := range stale {
			_ = os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return "", fmt.Errorf("unpack payload: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unpack(a, tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{filepath.Join(tmp, "bin"), filepath.Join(tmp, "images"), tmp} {
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("unpack payload: %w", err)
		}
	}
	_ = os.RemoveAll(dir) // a dir without its manifest: never complete, never run
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("install payload: %w", err)
	}
	if err := syncDir(root); err != nil {
		return "", fmt.Errorf("install payload: %w", err)
	}
	return dir, nil
}

// lock takes an exclusive flock on path, waiting for it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// unpack streams the archive into dir once: the archive's sha256 is taken as it is read, each
// file's as it is written, and each is compared with what the manifest (the first entry) says.
func unpack(a Archive, dir string) error {
	rc, err := a.Open()
	if err != nil {
		return fmt.Errorf("open the payload: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	src := io.TeeReader(rc, h)
	// Two decoders: one decodes ahead while this goroutine hashes and writes (2.8 -> 2.4 s).
	zr, err := zstd.NewReader(src, zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderConcurrency(2))
	if err != nil {
		return err
	}
	err = untar(tar.NewReader(zr), dir)
	if err == nil {
		_, err = io.Copy(io.Discard, zr)
	}
	zr.Close()
	// The archive's checksum decides first: a damaged download is named as one.
	if _, cerr := io.Copy(io.Discard, src); cerr != nil {
		return fmt.Errorf("read the payload: %w", cerr)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.Sum {
		return fmt.Errorf("the payload inside this outpost file does not match its checksum (%.16s, want %.16s): the file is damaged; re-download it", got, a.Sum)
	}
	if err != nil {
		return fmt.Errorf("unpack payload: %w", err)
	}
	return nil
}

func untar(tr *tar.Reader, dir string) (err error) {
	// Each file is flushed to disk by a goroutine of its own while the next one is decoded
	// (1.5 -> 1.1 s for the whole payload); all are on disk before untar returns, so before
	// the dir is renamed into place.
	var syncs syncGroup
	defer func() {
		if serr := syncs.wait(); err == nil {
			err = serr
		}
	}()
	hd, err := tr.Next()
	if err != nil || hd.Name != ManifestName {
		return fmt.Errorf("the archive does not start with its %s", ManifestName)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, 1<<20))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), raw, 0o644); err != nil {
		return err
	}
	ents, err := readManifest(dir)
	if err != nil {
		return err
	}
	want := map[string]Entry{}
	for _, e := range ents {
		want[e.Path] = e
	}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(hd.Name)
		if hd.Typeflag == tar.TypeDir {
			continue // dirs come from the files' paths
		}
		e, ok := want[name]
		if !ok {
			return fmt.Errorf("%q is not in the manifest", hd.Name)
		}
		delete(want, name)
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case hd.Typeflag == tar.TypeSymlink && e.Target != "" && hd.Linkname == e.Target:
			if err := os.Symlink(e.Target, dst); err != nil {
				return err
			}
		case hd.Typeflag == tar.TypeReg && e.Target == "":
			if err := writeFile(dst, tr, os.FileMode(hd.Mode)&0o755, e, &syncs); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		default:
			return fmt.Errorf("%s: the archive's entry is not what the manifest says", name)
		}
	}
	for p := range want {
		return fmt.Errorf("%s is missing from the archive", p)
	}
	return nil
}

func writeFile(dst string, r io.Reader, mode os.FileMode, e Entry, syncs *syncGroup) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		f.Close()
		return err
	}
	syncs.sync(dst, f)
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.Sum {
		return errors.New("checksum mismatch")
	}
	return os.Chtimes(dst, stamp(), stamp())
}

// syncGroup flushes and closes files in the background and keeps the first error.
type syncGroup struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (g *syncGroup) sync(name string, f *os.File) {
	g.wg.Go(func() {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = fmt.Errorf("%s: %w", name, err)
			}
			g.mu.Unlock()
		}
	})
}

func (g *syncGroup) wait() error {
	g.wg.Wait()
	return g.err
}

func hashFile(p, want string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != want {
		return errors.New("checksum mismatch")
	}
	return nil
}
