package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
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

func TestRuntimeClasses(t *testing.T) {
	m := RuntimeClasses([]Runtime{{"nvidia", "/x"}, {"nvidia-cdi", "/y"}})
	docs := strings.Split(strings.TrimPrefix(m, "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d docs", len(docs))
	}
	var rc struct {
		Kind     string
		Handler  string
		Metadata struct{ Name string }
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &rc); err != nil || rc.Kind != "RuntimeClass" || rc.Handler != "nvidia-cdi" || rc.Metadata.Name != "nvidia-cdi" {
		t.Errorf("%+v %v", rc, err)
	}
}
