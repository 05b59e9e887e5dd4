package encryption

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/storage/value"
)

func write(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

// The files Outpost writes are ones the apiserver loads, and values written with the first
// key read back through the rotated configuration.
func TestConfigLoadsInTheAPIServer(t *testing.T) {
	for _, provider := range Providers() {
		t.Run(provider, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "enc.json")
			now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			cfg, created, err := Ensure(p, provider, now, write)
			if err != nil || !created || cfg.Provider != provider || len(cfg.Keys) != 1 {
				t.Fatalf("%+v %v %v", cfg, created, err)
			}
			if again, created, err := Ensure(p, "aescbc", now, write); err != nil || created || again.Keys[0] != cfg.Keys[0] || again.Provider != provider {
				t.Fatalf("second Ensure changed the config: %+v %v %v", again, created, err)
			}
			old := transformer(t, p)
			ctx := context.Background()
			dc := value.DefaultContext("/registry/secrets/default/s")
			stored, err := old.TransformToStorage(ctx, []byte("hunter2"), dc)
			if err != nil {
				t.Fatal(err)
			}
			if string(stored[:len(cfg.Prefix(cfg.Keys[0]))]) != cfg.Prefix(cfg.Keys[0]) {
				t.Errorf("stored %q lacks prefix %q", stored[:30], cfg.Prefix(cfg.Keys[0]))
			}
			next, err := cfg.Rotated(now.Add(time.Hour))
			if err != nil || len(next.Keys) != 2 || next.Keys[1] != cfg.Keys[0] || next.Keys[0].Name == cfg.Keys[0].Name {
				t.Fatalf("rotated %+v %v", next, err)
			}
			b, _ := next.Marshal()
			write(p, b)
			plain, stale, err := transformer(t, p).TransformFromStorage(ctx, stored, dc)
			if err != nil || string(plain) != "hunter2" || !stale {
				t.Errorf("old value through the rotated config: %q stale=%v %v", plain, stale, err)
			}
			if got := next.Pruned(); len(got.Keys) != 1 || got.Keys[0] != next.Keys[0] {
				t.Errorf("pruned %+v", got)
			}
		})
	}
}

func transformer(t *testing.T, p string) value.Transformer {
	t.Helper()
	ec, err := encryptionconfig.LoadEncryptionConfig(context.Background(), p, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	for gr, tr := range ec.Transformers {
		if gr.Resource == "secrets" {
			return tr
		}
	}
	t.Fatal("no transformer for secrets")
	return nil
}

func TestEnsureRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Ensure(filepath.Join(dir, "x.json"), "rot13", time.Now(), write); err == nil {
		t.Error("unknown provider accepted")
	}
	p := filepath.Join(dir, "bad.json")
	os.WriteFile(p, []byte("{"), 0o600)
	if _, _, err := Ensure(p, "aescbc", time.Now(), write); err == nil {
		t.Error("corrupt config replaced or accepted")
	}
	if b, _ := os.ReadFile(p); string(b) != "{" {
		t.Error("corrupt config overwritten")
	}
}
