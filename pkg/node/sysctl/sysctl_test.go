package sysctl

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnsure(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "proc/sys/net/ipv4/ip_forward")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("0\n"), 0o644)
	if w := Ensure(root); len(w) != 0 {
		t.Fatalf("warnings %v", w)
	}
	if b, _ := os.ReadFile(p); string(b) != "1" {
		t.Errorf("ip_forward = %q", b)
	}
}
