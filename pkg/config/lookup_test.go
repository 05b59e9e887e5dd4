package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookupReadsOnlyAskedKeys(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	os.WriteFile(p, []byte("data-dir: /srv/outpost\nnode-name: 0123\nserver: [https://a:6443]\n"), 0o600)
	os.MkdirAll(p+".d", 0o755)
	os.WriteFile(filepath.Join(p+".d", "10.yaml"), []byte("runtime-dir: /run/o2\n"), 0o600)
	got, err := Lookup(p, true, "data-dir", "runtime-dir", "write-kubeconfig")
	if err != nil {
		t.Fatal(err)
	}
	if got["data-dir"] != "/srv/outpost" || got["runtime-dir"] != "/run/o2" || len(got) != 2 {
		t.Errorf("lookup %v", got)
	}
	if got, err := Lookup(filepath.Join(dir, "none.yaml"), false, "data-dir"); err != nil || len(got) != 0 {
		t.Errorf("missing default file: %v %v", got, err)
	}
	os.WriteFile(p, []byte("data-dri: /x\n"), 0o600)
	if _, err := Lookup(p, true, "data-dir"); err == nil {
		t.Error("unknown key accepted")
	}
}
