package payload

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
)

func archive(t *testing.T, files map[string]string, badSum bool) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	sums := ""
	for name, body := range files {
		s := sha256.Sum256([]byte(body))
		h := hex.EncodeToString(s[:])
		if badSum {
			h = hex.EncodeToString(make([]byte, 32))
		}
		sums += h + "  " + name + "\n"
		tw.WriteHeader(&tar.Header{Name: "bin/" + name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.WriteHeader(&tar.Header{Name: "bin/SHA256SUMS", Mode: 0o644, Size: int64(len(sums)), Typeflag: tar.TypeReg})
	tw.Write([]byte(sums))
	tw.Close()
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	return zb.Bytes()
}

func TestExtractOnceAndLinks(t *testing.T) {
	root := t.TempDir()
	fsys := fstest.MapFS{"payload.tar.zst": {Data: archive(t, map[string]string{"containerd": "#!c", "runc": "#!r"}, false)}}
	bin, err := Extract(fsys, root, "/usr/local/bin/outpost")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(bin, "runc")); string(b) != "#!r" {
		t.Fatalf("runc content %q", b)
	}
	if info, _ := os.Stat(filepath.Join(bin, "containerd")); info.Mode().Perm() != 0o755 {
		t.Fatalf("mode %o", info.Mode().Perm())
	}
	if l, _ := os.Readlink(filepath.Join(bin, "kubectl")); l != "/usr/local/bin/outpost" {
		t.Fatalf("kubectl link %q", l)
	}
	// ctr is containerd called by another name: a link beside it.
	if b, _ := os.ReadFile(filepath.Join(bin, "ctr")); string(b) != "#!c" {
		t.Fatalf("ctr is not containerd: %q", b)
	}
	cur, _ := filepath.EvalSymlinks(filepath.Join(root, "current", "bin"))
	if real, _ := filepath.EvalSymlinks(bin); cur != real {
		t.Fatalf("current -> %s, want %s", cur, real)
	}
	// Second run: a user edit survives because nothing is unpacked again.
	os.WriteFile(filepath.Join(bin, "runc"), []byte("edited"), 0o755)
	if _, err := Extract(fsys, root, "/usr/local/bin/outpost"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(bin, "runc")); string(b) != "edited" {
		t.Fatal("payload unpacked twice")
	}
}

// With the build's checksum beside the archive, a warm start does not read the archive, and
// a cold one refuses an archive that does not match it.
func TestExtractRecordedHash(t *testing.T) {
	root := t.TempDir()
	arch := archive(t, map[string]string{"containerd": "#!c"}, false)
	sum := sha256.Sum256(arch)
	hash := hex.EncodeToString(sum[:])
	fsys := fstest.MapFS{"payload.tar.zst": {Data: arch}, "payload.tar.zst.sha256": {Data: []byte(hash + "\n")}}
	bin, err := Extract(fsys, root, "/usr/local/bin/outpost")
	if err != nil || filepath.Base(filepath.Dir(bin)) != hash[:16] {
		t.Fatalf("first start: %s %v", bin, err)
	}
	// Warm: the archive is not read (here it could not be).
	fsys["payload.tar.zst"] = &fstest.MapFile{Data: []byte("not zstd")}
	if again, err := Extract(fsys, root, "/usr/local/bin/outpost"); err != nil || again != bin {
		t.Fatalf("warm start read the archive: %s %v", again, err)
	}
	// Cold, with a damaged archive: refused, nothing unpacked.
	other := t.TempDir()
	if _, err := Extract(fsys, other, "/usr/local/bin/outpost"); err == nil || !strings.Contains(err.Error(), "re-download") {
		t.Fatalf("damaged archive: %v", err)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	fsys["payload.tar.zst.sha256"] = &fstest.MapFile{Data: []byte("xyz")}
	if _, err := Extract(fsys, other, "/usr/local/bin/outpost"); err == nil || !strings.Contains(err.Error(), "not a sha256") {
		t.Fatalf("bad checksum file: %v", err)
	}
}

// A payload that carries ctr as a file of its own keeps it.
func TestExtractKeepsRealFileOverAlias(t *testing.T) {
	fsys := fstest.MapFS{"payload.tar.zst": {Data: archive(t, map[string]string{"containerd": "#!c", "ctr": "#!ctr"}, false)}}
	bin, err := Extract(fsys, t.TempDir(), "/usr/local/bin/outpost")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(bin, "ctr")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("ctr replaced by a link: %v %v", fi, err)
	}
}

func TestExtractRejectsCorruptAndLeavesNothing(t *testing.T) {
	root := t.TempDir()
	fsys := fstest.MapFS{"payload.tar.zst": {Data: archive(t, map[string]string{"runc": "x"}, true)}}
	if _, err := Extract(fsys, root, "/x"); err == nil {
		t.Fatal("want checksum error")
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestNoPayload(t *testing.T) {
	if _, err := Extract(fstest.MapFS{}, t.TempDir(), "/x"); err != ErrNoPayload {
		t.Fatalf("got %v", err)
	}
}
