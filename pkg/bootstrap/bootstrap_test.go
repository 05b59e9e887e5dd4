package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/token"
)

func serverDir(t *testing.T, withEncryption bool) string {
	dir := t.TempDir()
	for _, f := range files() {
		if f == "cred/encryption-config.json" && !withEncryption {
			continue
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o700)
		os.WriteFile(filepath.Join(dir, f), []byte("content of "+f), 0o600)
	}
	// A leaf: each server's own, never shared.
	os.WriteFile(filepath.Join(dir, "tls", "client-admin.key"), []byte("leaf"), 0o600)
	return dir
}

func TestSealOpenRoundTrip(t *testing.T) {
	tok := token.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	d, err := Collect(serverDir(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Files["tls/client-admin.key"]; ok || len(d.Files) != len(files()) {
		t.Fatalf("collected %v", d.Names())
	}
	blob, err := Seal(d, tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(blob), "content of") {
		t.Fatal("sealed data holds plain text")
	}
	// The pin part of the token does not matter: the secret does.
	got, err := Open(blob, token.Token{CAHash: strings.Repeat("0", 64), ID: "abcdef", Secret: "0123456789abcdef"})
	if err != nil || !got.Equal(d) {
		t.Fatalf("open: %v", err)
	}
	if _, err := Open(blob, token.Token{ID: "abcdef", Secret: "0123456789abcdeX"}); !errors.Is(err, ErrWrongToken) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := Open([]byte("not json"), tok); err == nil {
		t.Error("garbage opened")
	}
	out := t.TempDir()
	if err := got.Write(out, func(p string, b []byte, mode os.FileMode) error {
		os.MkdirAll(filepath.Dir(p), 0o700)
		return os.WriteFile(p, b, mode)
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(out, "tls", "server-ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st, err)
	}
	if Key(tok) == Key(token.Token{ID: "abcdef", Secret: "fedcba9876543210"}) || !strings.HasPrefix(Key(tok), KeyPrefix) {
		t.Error("key does not follow the token")
	}
}

func TestCollectNeedsTheCAs(t *testing.T) {
	dir := serverDir(t, false)
	d, err := Collect(dir)
	if err != nil || len(d.Files) != len(files())-1 {
		t.Fatalf("without encryption: %v %v", d, err)
	}
	os.Remove(filepath.Join(dir, "tls", "server-ca.key"))
	if _, err := Collect(dir); err == nil {
		t.Error("a missing CA key was accepted")
	}
}
