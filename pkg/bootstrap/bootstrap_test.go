package bootstrap

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/cluster"
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

// The key name, readable in the datastore and in snapshots, is not the unsalted SHA-256 that
// older versions used (one hash per guessed token) but a PBKDF2 of the token's secret.
func TestKeyIsPBKDF2(t *testing.T) {
	tok := token.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	h := sha256.Sum256([]byte("outpost-bootstrap-key:abcdef.0123456789abcdef"))
	if Key(tok) == KeyPrefix+hex.EncodeToString(h[:12]) || LegacyKey(tok) != KeyPrefix+hex.EncodeToString(h[:12]) {
		t.Errorf("key %s, legacy %s: the name is the plain hash", Key(tok), LegacyKey(tok))
	}
	k, err := pbkdf2.Key(sha256.New, "abcdef.0123456789abcdef", []byte("outpost-bootstrap-key"), iterations, 16)
	if err != nil {
		t.Fatal(err)
	}
	if want := KeyPrefix + hex.EncodeToString(k); Key(tok) != want {
		t.Errorf("key %s, want %s", Key(tok), want)
	}
}

// Data an older version sealed for the legacy name is still found and opened; new data is
// stored and found under the new name.
func TestLegacyDataOpens(t *testing.T) {
	tok := token.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	d, err := Collect(serverDir(t, false))
	if err != nil {
		t.Fatal(err)
	}
	newKey, oldKey := Key(tok), LegacyKey(tok)
	// What older versions stored: sealed for the legacy name.
	old, err := SealAs(d, tok, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Seal(d, tok)
	if err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]map[string][]byte{
		"legacy": {oldKey: old},
		"new":    {newKey: fresh},
		"both":   {oldKey: old, newKey: fresh},
	} {
		get := func(k string) ([]byte, bool, error) { b, ok := store[k]; return b, ok, nil }
		blob, key, err := Find(tok, get)
		if err != nil || key == "" || (name != "legacy" && key != newKey) {
			t.Fatalf("%s: found under %q: %v", name, key, err)
		}
		if got, err := OpenAs(blob, tok, key); err != nil || !got.Equal(d) {
			t.Errorf("%s: OpenAs: %v", name, err)
		}
		if got, err := Open(blob, tok); err != nil || !got.Equal(d) {
			t.Errorf("%s: Open: %v", name, err)
		}
		// The name is bound: data is not opened as if stored under the other one.
		other := map[string]string{newKey: oldKey, oldKey: newKey}[key]
		if _, err := OpenAs(blob, tok, other); !errors.Is(err, ErrWrongToken) {
			t.Errorf("%s: opened under another name: %v", name, err)
		}
	}
	if _, key, err := Find(token.Token{ID: "abcdef", Secret: "fedcba9876543210"}, func(k string) ([]byte, bool, error) {
		b, ok := map[string][]byte{oldKey: old, newKey: fresh}[k]
		return b, ok, nil
	}); err != nil || key != "" {
		t.Errorf("another token found %q: %v", key, err)
	}
}

// The settings travel sealed with the files; a server with other settings, or without the
// cluster's Secrets encryption, is refused; data from an older version (no settings) checks
// the encryption only.
func TestSettingsTravelAndCheck(t *testing.T) {
	_, pods, _ := net.ParseCIDR("10.42.0.0/16")
	_, svcs, _ := net.ParseCIDR("10.43.0.0/16")
	own := cluster.Settings{ClusterCIDR: pods, ServiceCIDR: svcs, ClusterDNS: net.ParseIP("10.43.0.10"), ClusterDomain: "cluster.local", FlannelBackend: "vxlan", NetworkPolicy: true}
	d, err := Collect(serverDir(t, false))
	if err != nil {
		t.Fatal(err)
	}
	d.Settings = &own
	tok := token.Token{ID: "abcdef", Secret: "0123456789abcdef"}
	blob, err := Seal(d, tok)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Open(blob, tok)
	if err != nil || back.Settings == nil || back.Settings.ServiceCIDR.String() != "10.43.0.0/16" || !back.Equal(d) {
		t.Fatalf("opened %+v, %v", back, err)
	}
	if err := back.Check(own, false); err != nil {
		t.Error(err)
	}
	other := own
	other.FlannelBackend = "host-gw"
	if err := back.Check(other, false); err == nil || !strings.Contains(err.Error(), "--flannel-backend is host-gw here and vxlan in the cluster") {
		t.Errorf("other backend: %v", err)
	}
	if back.Equal(&Data{Files: d.Files, Settings: &other}) || back.Equal(&Data{Files: d.Files}) {
		t.Error("data with other settings, or none, is equal")
	}
	if err := back.Check(own, true); err == nil || !strings.Contains(err.Error(), "--secrets-encryption is true here and false") {
		t.Errorf("encryption on here only: %v", err)
	}
	old := &Data{Files: map[string][]byte{EncryptionConfigFile: []byte("{}")}}
	if err := old.Check(other, true); err != nil {
		t.Errorf("older data: %v", err)
	}
	if err := old.Check(other, false); err == nil {
		t.Error("a server without the cluster's encryption joins")
	}
}
