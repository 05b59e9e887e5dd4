package kubeclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigNamesOutpostAndTheFile(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kc.yaml")
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"+
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"), 0o600)
	rc, err := Config(kc)
	if err != nil || rc.Host != "https://127.0.0.1:6443" || !strings.HasPrefix(rc.UserAgent, "outpost/") {
		t.Fatalf("%+v %v", rc, err)
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v", err)
	}
}
