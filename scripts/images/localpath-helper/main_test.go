package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateAndDelete(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	vol := filepath.Join(root, "pvc-1_default_data")
	os.Mkdir(root, 0o755) // as the kubelet makes it on an agent
	if err := run([]string{"-p", vol, "-s", "1073741824", "-m", "Filesystem", "-a", "create"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(vol); err != nil || fi.Mode().Perm() != 0o777 || !fi.IsDir() {
		t.Fatalf("volume dir: %v %v", fi, err)
	}
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o700 {
		t.Errorf("storage dir mode %v, want 0700", fi.Mode().Perm())
	}
	// Creating again is fine (a retried helper pod).
	if err := run([]string{"-p", vol, "-a", "create"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(vol, "weights"), []byte("x"), 0o644)
	if err := run([]string{"-p", vol, "-a", "delete"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Errorf("volume left after delete: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("storage dir removed with the volume: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"-p", "relative/dir", "-a", "create"},
		{"-p", "/", "-a", "delete"},
		{"-p", "/storage", "-a", "delete"},
		{"-p", "/var/lib/../lib/x/../..", "-a", "delete"},
		{"-p", "/var/lib/outpost/storage/v", "-a", "format"},
		{"-p", "/var/lib/outpost/storage/v", "-m", "Block", "-a", "create"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
