package bootstrapdata

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/token"
)

// The keeper stores the data under the new key name beside an entry an older version stored
// under the legacy name (a plain hash of the token). Alone on its datastore it removes the
// legacy entry; on a shared one it keeps it, current, for servers of the older version
// mid-upgrade (a token rotation removes it).
func TestKeeperReplacesLegacyEntry(t *testing.T) {
	tok, err := token.Parse(testToken)
	if err != nil {
		t.Fatal(err)
	}
	d := bootstrapData(t)
	key, legacy := bootstrap.Key(tok), bootstrap.LegacyKey(tok)
	old, err := bootstrap.SealAs(d, tok, legacy)
	if err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{false, true} {
		dir := t.TempDir()
		k := datastore.New(datastore.Config{DBFile: filepath.Join(dir, "state.db"), Socket: filepath.Join(dir, "kine.sock"),
			CompactInterval: time.Hour, CompactBatch: 1000, PollInterval: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := k.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if err := k.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for k.Ready(ctx) != nil {
			time.Sleep(50 * time.Millisecond)
		}
		kv, err := datastore.Dial(k.EtcdEndpoint())
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Set(ctx, legacy, old); err != nil {
			t.Fatal(err)
		}
		// The server dir: the same files the legacy entry holds.
		serverDir := filepath.Join(dir, "server")
		if err := d.Write(serverDir, func(p string, b []byte, mode os.FileMode) error {
			os.MkdirAll(filepath.Dir(p), 0o700)
			return os.WriteFile(p, b, mode)
		}); err != nil {
			t.Fatal(err)
		}
		tokFile := filepath.Join(dir, "token")
		writeTestFile(t, tokFile, testToken+"\n")
		b := &Keeper{ServerDir: serverDir, Tokens: &token.File{Path: tokFile}, Endpoint: k.EtcdEndpoint(), Shared: shared,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		keys, err := kv.Keys(ctx, bootstrap.KeyPrefix)
		want := []string{key}
		if shared {
			want = append(want, legacy)
		}
		if err != nil || !slices.Equal(sorted(keys), sorted(want)) {
			t.Errorf("shared %v: keys %v, want %v (%v)", shared, keys, want, err)
		}
		if shared {
			// A changed file reaches the legacy entry too.
			writeTestFile(t, filepath.Join(serverDir, "tls", "service.key"), "new key")
			if err := b.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			blob, _, _ := kv.Get(ctx, legacy)
			if got, err := bootstrap.OpenAs(blob, tok, legacy); err != nil || string(got.Files["tls/service.key"]) != "new key" {
				t.Errorf("legacy entry after a change: %v", err)
			}
			d.Files["tls/service.key"] = []byte("new key")
		}
		blob, _, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bootstrap.OpenAs(blob, tok, key); err != nil || !got.Equal(d) {
			t.Errorf("shared %v: new entry: %v", shared, err)
		}
		kv.Close()
		k.Stop(context.Background())
		cancel()
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

const testToken = "abcdef.0123456789abcdef"

// bootstrapData is stand-in bootstrap data: the files a cluster always has.
func bootstrapData(t *testing.T) *bootstrap.Data {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"server-ca", "client-ca", "request-header-ca", "kubelet-serving-ca"} {
		writeTestFile(t, filepath.Join(dir, "tls", f+".crt"), f)
		writeTestFile(t, filepath.Join(dir, "tls", f+".key"), f)
	}
	writeTestFile(t, filepath.Join(dir, "tls", "service.key"), "sa")
	d, err := bootstrap.Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
