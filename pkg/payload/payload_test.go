package payload

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// build packs files (path → body) and links (path → target) as scripts/pack-payload.sh does:
// the manifest first. lie changes the manifest's sum for that path.
func build(t *testing.T, files, links map[string]string, lie string) Archive {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	man := ""
	for _, n := range names {
		s := sha256.Sum256([]byte(files[n]))
		sum := hex.EncodeToString(s[:])
		if n == lie {
			sum = strings.Repeat("0", 64)
		}
		man += fmt.Sprintf("%s %d %s\n", sum, len(files[n]), n)
	}
	for n, to := range links {
		man += fmt.Sprintf("link %s %s\n", to, n)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(man)), Typeflag: tar.TypeReg})
	tw.Write([]byte(man))
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	for n, to := range links {
		tw.WriteHeader(&tar.Header{Name: n, Linkname: to, Typeflag: tar.TypeSymlink})
	}
	tw.Close()
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	raw := zb.Bytes()
	s := sha256.Sum256(raw)
	return Archive{Sum: hex.EncodeToString(s[:]), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }}
}

// sample is a small payload: files and links.
func sample() (map[string]string, map[string]string) {
	return map[string]string{"bin/outpost": "#!o", "bin/containerd": "#!c", "bin/runc": "#!r", "images/pause.tar": "tar"},
		map[string]string{"bin/ctr": "containerd", "bin/kubectl": "outpost"}
}

func TestInstallOnceThenCheck(t *testing.T) {
	fs, ls := sample()
	root := t.TempDir()
	a := build(t, fs, ls, "")
	dir, err := Install(a, root)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(root, a.Sum[:16]) {
		t.Fatalf("dir %s", dir)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bin/ctr")); string(b) != "#!c" {
		t.Fatalf("ctr is not containerd: %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "bin/runc")); fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(stamp()) {
		t.Fatalf("runc: mode %o, time %v", fi.Mode().Perm(), fi.ModTime())
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".tmp-*")); len(left) != 0 {
		t.Fatalf("temp dirs left: %v", left)
	}
	// A second run reads nothing of the archive.
	a.Open = func() (io.ReadCloser, error) { t.Fatal("archive read on a warm start"); return nil, nil }
	if again, err := Install(a, root); err != nil || again != dir {
		t.Fatalf("second install: %s %v", again, err)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

// A file changed after unpacking (same size, new time) is hashed and named, with the fix; one
// only touched passes.
func TestCheckFindsDamage(t *testing.T) {
	fs, ls := sample()
	root := t.TempDir()
	a := build(t, fs, ls, "")
	dir, err := Install(a, root)
	if err != nil {
		t.Fatal(err)
	}
	runc := filepath.Join(dir, "bin/runc")
	os.Chtimes(runc, time.Now(), time.Now())
	if err := Check(dir); err != nil {
		t.Fatalf("touched file refused: %v", err)
	}
	os.WriteFile(runc, []byte("#!x"), 0o755)
	for _, check := range []func(string) error{Check, Verify} {
		err := check(dir)
		if err == nil || !strings.Contains(err.Error(), "bin/runc") || !strings.Contains(err.Error(), "delete "+dir) {
			t.Fatalf("damage not named with the fix: %v", err)
		}
	}
	if _, err := Install(a, root); err == nil {
		t.Fatal("a damaged payload dir ran")
	}
	os.Remove(filepath.Join(dir, "bin/ctr"))
	os.WriteFile(runc, []byte("#!r"), 0o755)
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "bin/ctr") {
		t.Fatalf("missing link: %v", err)
	}
}

// Verify hashes even a file whose size and time look right.
func TestVerifyHashesAll(t *testing.T) {
	fs, ls := sample()
	dir, err := Install(build(t, fs, ls, ""), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bin/containerd")
	os.WriteFile(p, []byte("#!X"), 0o755)
	os.Chtimes(p, stamp(), stamp())
	if err := Check(dir); err != nil {
		t.Fatalf("check is by size and time: %v", err)
	}
	if err := Verify(dir); err == nil {
		t.Fatal("verify missed a changed file")
	}
}

// A damaged archive or one whose content is not its manifest's leaves nothing behind.
func TestInstallRefusesBadArchives(t *testing.T) {
	fs, ls := sample()
	good := build(t, fs, ls, "")
	raw, _ := good.Open()
	body, _ := io.ReadAll(raw)
	flipped := append([]byte{}, body...)
	flipped[len(flipped)/2] ^= 0xff
	cases := map[string]struct {
		a    Archive
		want string
	}{
		"damaged download": {Archive{Sum: good.Sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(flipped)), nil }}, "re-download"},
		"truncated":        {Archive{Sum: good.Sum, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body[:len(body)/2])), nil }}, "re-download"},
		"bad recorded sum": {Archive{Sum: "zz", Open: good.Open}, "re-download"},
		"manifest lies":    {build(t, fs, ls, "bin/runc"), "bin/runc: checksum mismatch"},
	}
	for name, c := range cases {
		root := t.TempDir()
		_, err := Install(c.a, root)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
		if left, _ := filepath.Glob(filepath.Join(root, "[^.]*")); len(left) != 0 {
			t.Errorf("%s: left %v", name, left)
		}
		if left, _ := filepath.Glob(filepath.Join(root, ".tmp-*")); len(left) != 0 {
			t.Errorf("%s: left %v", name, left)
		}
	}
}

func TestParseManifestRefusesEscapes(t *testing.T) {
	sum := strings.Repeat("a", 64)
	for _, m := range []string{
		sum + " 1 ../x", sum + " 1 /etc/x", "link ../x bin/a", "link a/b bin/a", sum + " -1 bin/a", "zz 1 bin/a", sum + " 1", "",
	} {
		if _, err := ParseManifest(strings.NewReader(m)); err == nil {
			t.Errorf("accepted %q", m)
		}
	}
}

// Locate finds the payload around the running program and points current at it when it lies
// in the data dir.
func TestLocate(t *testing.T) {
	fs, ls := sample()
	root := t.TempDir()
	dir, err := Install(build(t, fs, ls, ""), root)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Locate(filepath.Join(dir, "bin/kubectl"), root)
	if err != nil || bin != filepath.Join(dir, "bin") {
		t.Fatalf("locate: %s %v", bin, err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "current")); l != filepath.Base(dir) {
		t.Fatalf("current -> %q", l)
	}
	imgs, err := filepath.Glob(filepath.Join(ImagesDir(bin), "*.tar"))
	if err != nil || len(imgs) != 1 || filepath.Base(imgs[0]) != "pause.tar" {
		t.Fatalf("images %v %v", imgs, err)
	}
	if _, err := Locate(filepath.Join(t.TempDir(), "outpost"), root); err != ErrNoPayload {
		t.Fatalf("no payload: %v", err)
	}
}

func TestDataDir(t *testing.T) {
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "config.yaml")
	os.WriteFile(cfg, []byte("data-dir: /srv/from-file\nnode-name: a\n"), 0o600)
	os.MkdirAll(cfg+".d", 0o755)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, c := range []struct {
		argv []string
		env  string
		want string
	}{
		{[]string{"outpost", "server"}, "", "/var/lib/outpost"},
		{[]string{"outpost", "server", "--data-dir", "/srv/a"}, "", "/srv/a"},
		{[]string{"outpost", "agent", "--debug", "-d=/srv/b"}, "", "/srv/b"},
		{[]string{"outpost", "server", "--config", cfg}, "", "/srv/from-file"},
		{[]string{"outpost", "server", "-c", cfg, "-d", "/srv/c"}, "", "/srv/c"},
		{[]string{"outpost", "server"}, cfg, "/srv/from-file"},
		// A tool's arguments are its own.
		{[]string{"outpost", "kubectl", "-d", "/srv/x"}, cfg, "/srv/from-file"},
		{[]string{"kubectl", "--data-dir", "/srv/x"}, "", "/var/lib/outpost"},
		{[]string{"ctr", "images", "ls"}, "env", "/srv/env"},
		{[]string{"outpost", "server", "--", "-d", "/srv/x"}, "", "/var/lib/outpost"},
		{[]string{"outpost", "server", "--config", filepath.Join(cfgDir, "none.yaml")}, "", "/var/lib/outpost"},
	} {
		env["OUTPOST_CONFIG_FILE"], env["OUTPOST_DATA_DIR"] = c.env, ""
		if c.env == "env" {
			env["OUTPOST_CONFIG_FILE"], env["OUTPOST_DATA_DIR"] = "", "/srv/env"
		}
		if c.env == "" || c.env == "env" {
			env["OUTPOST_CONFIG_FILE"] = filepath.Join(cfgDir, "absent.yaml")
		}
		if got := DataDir(c.argv, getenv); got != c.want {
			t.Errorf("%v (config %q): %s, want %s", c.argv, c.env, got, c.want)
		}
	}
	wd, _ := os.Getwd()
	if got := DataDir([]string{"outpost", "server", "-d", "rel"}, getenv); got != filepath.Join(wd, "rel") {
		t.Errorf("relative: %s", got)
	}
}

// A data dir the unpack makes is private, as the inner program would make it.
func TestInstallMakesPrivateDataDir(t *testing.T) {
	fs, ls := sample()
	data := filepath.Join(t.TempDir(), "data-dir")
	if _, err := Install(build(t, fs, ls, ""), filepath.Join(data, "data")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %o", fi.Mode().Perm())
	}
}

// Runs started together (a service and a user's kubectl on first boot) unpack once and all
// run from the same complete dir.
func TestInstallConcurrent(t *testing.T) {
	fs, ls := sample()
	a := build(t, fs, ls, "")
	root := t.TempDir()
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			dir, err := Install(a, root)
			if err == nil {
				err = Verify(dir)
			}
			errs <- err
		}()
	}
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".tmp-*")); len(left) != 0 {
		t.Fatalf("temp dirs left: %v", left)
	}
}

// A temp dir a killed run left is swept by the next unpack.
func TestInstallSweepsStaleTemp(t *testing.T) {
	fs, ls := sample()
	root := t.TempDir()
	stale := filepath.Join(root, ".tmp-0123456789abcdef-1")
	os.MkdirAll(filepath.Join(stale, "bin"), 0o755)
	if _, err := Install(build(t, fs, ls, ""), root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp dir kept: %v", err)
	}
}

// A symlink entry must point where the manifest says.
func TestInstallRefusesWrongLink(t *testing.T) {
	fs, _ := sample()
	a := build(t, fs, map[string]string{"bin/ctr": "containerd"}, "")
	raw, _ := a.Open()
	body, _ := io.ReadAll(raw)
	// Rebuild with the tar entry pointing elsewhere but the manifest unchanged.
	zr, _ := zstd.NewReader(bytes.NewReader(body))
	plain, _ := io.ReadAll(zr)
	i := bytes.LastIndex(plain, []byte("containerd"))
	copy(plain[i:], "outpost\x00\x00\x00")
	// The tar header checksum must still match: recompute it.
	hdr := plain[(i/512)*512 : (i/512)*512+512]
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	s := sha256.Sum256(zb.Bytes())
	bad := Archive{Sum: hex.EncodeToString(s[:]), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(zb.Bytes())), nil }}
	if _, err := Install(bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "bin/ctr") {
		t.Fatalf("a link to the wrong target was accepted: %v", err)
	}
}

// Files others could change are not run.
func TestCheckRefusesWritableByOthers(t *testing.T) {
	fs, ls := sample()
	dir, err := Install(build(t, fs, ls, ""), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bin/outpost")
	os.Chmod(p, 0o777)
	os.Chtimes(p, stamp(), stamp())
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("world-writable file accepted: %v", err)
	}
	os.Chmod(p, 0o755)
	os.Chmod(filepath.Join(dir, "bin"), 0o777)
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("world-writable dir accepted: %v", err)
	}
}
