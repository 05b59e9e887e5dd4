package server

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/token"
)

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

// kineSnapshot writes a SQLite file in kine's layout holding rows.
func kineSnapshot(t *testing.T, path string, rows map[string][]byte) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER,
		deleted INTEGER, create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB)`); err != nil {
		t.Fatal(err)
	}
	for k, v := range rows {
		if _, err := db.Exec(`INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value)
			VALUES (?, 1, 0, 0, 0, 0, ?)`, k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// restoreCopies lists the private snapshot copies left in the datastore's dir.
func restoreCopies(t *testing.T, c *config.Control) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(c.Dirs.DBFile()), ".restore-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The snapshot is checked and restored from a private copy: replacing the file at
// --cluster-reset-restore-path after the check does not change what is restored. Data an
// older version stored under the legacy key name is restored too, and a refused restore
// leaves no copy behind.
func TestRestoreUsesTheCheckedCopy(t *testing.T) {
	tok, err := token.Parse(testToken)
	if err != nil {
		t.Fatal(err)
	}
	d := bootstrapData(t)
	key, legacy := bootstrap.Key(tok), bootstrap.LegacyKey(tok)
	blob, err := bootstrap.SealAs(d, tok, key)
	if err != nil {
		t.Fatal(err)
	}
	oldBlob, err := bootstrap.SealAs(d, tok, legacy) // as older versions stored it
	if err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	checked, swapped := filepath.Join(in, "snap"), filepath.Join(in, "other")
	kineSnapshot(t, checked, map[string][]byte{legacy: oldBlob, "/registry/which": []byte("checked")})
	kineSnapshot(t, swapped, map[string][]byte{key: blob, "/registry/which": []byte("swapped")})

	root := t.TempDir()
	c := &config.Control{RestoreFrom: checked, Token: parsed(t, testToken), NodeName: "s1",
		Dirs: datadir.Dirs{Data: filepath.Join(root, "data"), Runtime: filepath.Join(root, "run")}}
	r, err := checkRestore(c)
	if err != nil {
		t.Fatal(err)
	}
	if !r.data.Equal(d) {
		t.Fatal("the legacy entry's bootstrap data did not open")
	}
	if st, err := os.Stat(r.file); err != nil || st.Mode().Perm() != 0o600 || filepath.Dir(r.file) != filepath.Dir(c.Dirs.DBFile()) {
		t.Fatalf("private copy %s: %v %v", r.file, st, err)
	}
	if err := os.Rename(swapped, checked); err != nil {
		t.Fatal(err)
	}
	s := &Server{Cfg: &config.Server{Control: c}, Log: discard(), Restore: r}
	if err := s.restore(); err != nil {
		t.Fatal(err)
	}
	got, _, err := datastore.SQLiteGet(context.Background(), c.Dirs.DBFile(), "/registry/which")
	if err != nil || string(got) != "checked" {
		t.Errorf("restored %q (%v), want the checked snapshot", got, err)
	}
	if left := restoreCopies(t, c); len(left) != 0 {
		t.Errorf("copies left: %v", left)
	}
	if b, err := os.ReadFile(filepath.Join(c.Dirs.ServerDir(), "tls", "server-ca.key")); err != nil || string(b) != "server-ca" {
		t.Errorf("bootstrap files: %q %v", b, err)
	}

	// Refused (data sealed with another token): nothing stays behind.
	c2 := &config.Control{RestoreFrom: checked, Token: parsed(t, "abcdef.fedcba9876543210"),
		Dirs: datadir.Dirs{Data: filepath.Join(root, "data2"), Runtime: filepath.Join(root, "run2")}}
	if _, err := checkRestore(c2); err == nil || !strings.Contains(err.Error(), "no bootstrap data for this token") {
		t.Errorf("another token: %v", err)
	}
	if left := restoreCopies(t, c2); len(left) != 0 {
		t.Errorf("copies left after a refused check: %v", left)
	}
	// Not even the directories the copy needed: the data dir did not exist before.
	if _, err := os.Stat(c2.Dirs.Data); !os.IsNotExist(err) {
		t.Errorf("a refused restore left the data dir %s: %v", c2.Dirs.Data, err)
	}
}

// parsed is a --token as config gives it: parsed once.
func parsed(t *testing.T, s string) *token.Token {
	t.Helper()
	tok, err := token.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return &tok
}
