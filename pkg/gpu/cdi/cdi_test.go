package cdi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

// A GPU whose device node is missing stops the start with one line naming it and the fix.
func TestCheckDeviceNodes(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev", "nvidia0"), nil, 0o644)
	n := &detect.Node{GPUs: []detect.GPU{{Index: 0, Minor: 0}, {Index: 1, Minor: 1}}}
	err := CheckDeviceNodes(n, root)
	if err == nil || !strings.Contains(err.Error(), "GPU 1") || !strings.Contains(err.Error(), "nvidia-modprobe") {
		t.Fatalf("missing /dev/nvidia1: %v", err)
	}
	n.GPUs = n.GPUs[:1]
	if err := CheckDeviceNodes(n, root); err != nil {
		t.Fatal(err)
	}
}

// The spec is written whole, readable by containerd, and replaced whole.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cdi")
	for _, body := range []string{"cdiVersion: 0.6.0\n", "cdiVersion: 1.1.0\n"} {
		p, err := Write([]byte(body), dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		if string(b) != body || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %q %v", p, b, st.Mode())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Errorf("files left: %v", left)
	}
}

// Remove takes the spec away, and is fine when there is none.
func TestRemove(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write([]byte("x"), dir); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Errorf("spec still there: %v", err)
	}
}
