package gpulib

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
)

func touch(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The library is found in the usual dirs and in those ld.so.conf.d names; none means no helper.
func TestFindLibrary(t *testing.T) {
	root := t.TempDir()
	if p := FindLibrary(root); p != "" {
		t.Errorf("empty root: %q", p)
	}
	touch(t, filepath.Join(root, "opt/nvidia/lib", LibraryName))
	if p := FindLibrary(root); p != "" {
		t.Errorf("unlisted dir found: %q", p)
	}
	os.MkdirAll(filepath.Join(root, "etc/ld.so.conf.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/ld.so.conf.d/nvidia.conf"), []byte("# driver\n/opt/nvidia/lib\n"), 0o644)
	if p := FindLibrary(root); p != filepath.Join(root, "opt/nvidia/lib", LibraryName) {
		t.Errorf("ld.so.conf.d dir: %q", p)
	}
	touch(t, filepath.Join(root, "usr/lib64", LibraryName))
	if p := FindLibrary(root); p != filepath.Join(root, "usr/lib64", LibraryName) {
		t.Errorf("usual dir first: %q", p)
	}
}

func TestNoDriver(t *testing.T) {
	if _, err := (NoDriver{}).Detect(); !errors.Is(err, detect.ErrNoDriver) {
		t.Error(err)
	}
}

// A device ID's GPU: a GPU's UUID is its own, a MIG device's is inside its ID.
func TestGPUOf(t *testing.T) {
	for id, want := range map[string]string{"GPU-a": "GPU-a", "MIG-GPU-a/2/0": "GPU-a", "MIG-0b1c": "MIG-0b1c"} {
		if got := GPUOf(id); got != want {
			t.Errorf("GPUOf(%q) = %q, want %q", id, got, want)
		}
	}
}
