package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func exe(t *testing.T, p string) {
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	exe(t, filepath.Join(root, "opt/bin/nvidia-container-runtime"))
	exe(t, filepath.Join(root, "usr/bin/nvidia-container-runtime"))
	exe(t, filepath.Join(root, "usr/local/nvidia/toolkit/nvidia-container-runtime.cdi"))
	os.WriteFile(filepath.Join(root, "usr/bin/nvidia-container-runtime.experimental"), nil, 0o644) // not executable
	got := Find(root, "/opt/bin:/nonexistent")
	if len(got) != 2 || got[0] != (Runtime{"nvidia", "/opt/bin/nvidia-container-runtime"}) ||
		got[1] != (Runtime{"nvidia-cdi", "/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi"}) {
		t.Errorf("got %+v", got)
	}
	if len(Find(t.TempDir(), "/usr/bin")) != 0 {
		t.Error("found runtimes on an empty root")
	}
}

func TestDefault(t *testing.T) {
	found := []Runtime{{"nvidia", "/usr/bin/nvidia-container-runtime"}}
	for req, wantErr := range map[string]string{
		"": "", "runc": "", "nvidia": "", "nvidia-cdi": "toolkit", "kata": "not one of",
	} {
		err := Default(req, found)
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err %v, want %q", req, err, wantErr)
		}
	}
}

func TestLabel(t *testing.T) {
	// The server's controller and the node's label keeper meet on this name.
	if got := Label("nvidia-cdi"); got != "runtime.outpost.io/nvidia-cdi" {
		t.Errorf("Label = %q", got)
	}
}
