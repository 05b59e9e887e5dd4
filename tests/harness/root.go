package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Root is a throwaway copy of this machine's root filesystem: an overlay whose lower layer is
// the real / and whose upper layer is a tmpfs, with /proc, /sys and /dev from the host and a
// fresh /run and /tmp. Commands run in it by chroot. Whatever they write lands in Upper, so a
// test can tell exactly what was created, and a whiteout there means a file of the real root
// was deleted.
type Root struct {
	T       testing.TB
	Base    string
	Upper   string
	Merged  string
	Scratch string // on the tmpfs, outside the overlay: for data dirs that need a real filesystem
	binds   []string
	hidden  map[string]bool
}

// NewRoot builds the overlay; Cleanup removes it and everything mounted under it.
func NewRoot(t testing.TB) *Root {
	t.Helper()
	base, err := os.MkdirTemp("", "outpost-root-")
	if err != nil {
		t.Fatal(err)
	}
	r := &Root{T: t, Base: base, Upper: filepath.Join(base, "t", "upper"), Merged: filepath.Join(base, "merged"),
		Scratch: filepath.Join(base, "t", "scratch")}
	t.Cleanup(r.Cleanup)
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(base, "t"), 0o755))
	must(syscall.Mount("tmpfs", filepath.Join(base, "t"), "tmpfs", 0, "size=8g"))
	for _, d := range []string{r.Upper, filepath.Join(base, "t", "work"), r.Merged, r.Scratch} {
		must(os.MkdirAll(d, 0o755))
	}
	must(syscall.Mount("overlay", r.Merged, "overlay", 0,
		fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", r.Upper, filepath.Join(base, "t", "work"))))
	must(syscall.Mount("proc", filepath.Join(r.Merged, "proc"), "proc", 0, ""))
	for _, d := range []string{"sys", "dev"} {
		must(syscall.Mount("/"+d, filepath.Join(r.Merged, d), "", syscall.MS_BIND|syscall.MS_REC, ""))
	}
	for _, d := range []string{"run", "tmp"} {
		must(syscall.Mount("tmpfs", filepath.Join(r.Merged, d), "tmpfs", 0, ""))
	}
	return r
}

// Path is p inside the root, as seen from the host.
func (r *Root) Path(p string) string { return filepath.Join(r.Merged, p) }

// Bind mounts a scratch dir (a real filesystem) at p inside the root, creating both.
func (r *Root) Bind(p string) string {
	r.T.Helper()
	src := filepath.Join(r.Scratch, strings.ReplaceAll(strings.Trim(p, "/"), "/", "_"))
	if err := os.MkdirAll(src, 0o755); err != nil {
		r.T.Fatal(err)
	}
	if err := os.MkdirAll(r.Path(p), 0o755); err != nil {
		r.T.Fatal(err)
	}
	if err := syscall.Mount(src, r.Path(p), "", syscall.MS_BIND, ""); err != nil {
		r.T.Fatal(err)
	}
	r.binds = append(r.binds, r.Path(p))
	return src
}

// Command is sh -c script inside the root.
func (r *Root) Command(script string, env ...string) *exec.Cmd {
	cmd := exec.Command("chroot", r.Merged, "/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}, env...)
	return cmd
}

// Run runs a script and returns its combined output.
func (r *Root) Run(script string, env ...string) (string, error) {
	var out bytes.Buffer
	cmd := r.Command(script, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Hide deletes, inside the root only, those of paths that the real root has, so the root
// looks like a machine without them (a host that earlier runs left a /var/lib/kubelet on).
// Created then reports them only if something recreated them.
func (r *Root) Hide(paths ...string) {
	r.T.Helper()
	if r.hidden == nil {
		r.hidden = map[string]bool{}
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		// An absolute link on the way (/var/run -> /run) would lead out of the root.
		if dir, err := filepath.EvalSymlinks(filepath.Dir(r.Path(p))); err != nil || !strings.HasPrefix(dir, r.Merged+"/") {
			r.T.Fatalf("Hide %s: leaves the root (%s, %v)", p, dir, err)
		}
		if err := os.RemoveAll(r.Path(p)); err != nil {
			r.T.Fatal(err)
		}
		r.hidden[p] = true
	}
}

// Created lists what the root's writes left: regular files and links in the upper layer,
// directories that do not exist in the real root, and whiteouts (deletions of real files).
func (r *Root) Created() []string {
	var out []string
	filepath.Walk(r.Upper, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == r.Upper {
			return nil
		}
		rel := strings.TrimPrefix(p, r.Upper)
		switch {
		case fi.Mode()&os.ModeCharDevice != 0:
			if !r.hidden[rel] {
				out = append(out, "deleted "+rel)
			}
		case fi.IsDir():
			if _, err := os.Lstat(rel); err != nil || r.hidden[rel] {
				out = append(out, "dir "+rel)
			}
		default:
			out = append(out, "file "+rel)
		}
		return nil
	})
	return out
}

// Leftovers is harness.Leftovers for what ran in the root, not counting the root's own mounts.
func (r *Root) Leftovers() []string {
	own := map[string]bool{r.Merged: true}
	for _, d := range []string{"proc", "run", "tmp"} {
		own[r.Path(d)] = true
	}
	for _, b := range r.binds {
		own[b] = true
	}
	prev := skipMount
	skipMount = func(m string) bool {
		return own[m] || strings.HasPrefix(m, r.Path("sys")) || strings.HasPrefix(m, r.Path("dev"))
	}
	defer func() { skipMount = prev }()
	return Leftovers(r.Merged)
}

// Cleanup kills what runs in the root, unmounts everything under it and removes it.
func (r *Root) Cleanup() {
	KillUnder(r.Merged)
	KillUnder(r.Base)
	Unmount(r.Merged)
	Unmount(r.Base)
	os.RemoveAll(r.Base)
}
