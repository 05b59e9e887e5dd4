package datastore

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/k": "postgres://***@db:5432/k",
		"sqlite:///x/state.db":          "sqlite:///x/state.db",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDSNDefaultsToSQLiteWAL(t *testing.T) {
	k := New(Config{DBFile: "/d/state.db", Socket: "/r/kine.sock"})
	if got := k.DSN(); got[:len("sqlite:///d/state.db?_journal_mode=WAL")] != "sqlite:///d/state.db?_journal_mode=WAL" {
		t.Fatalf("dsn %q", got)
	}
	if k.EtcdEndpoint() != "unix:///r/kine.sock" {
		t.Fatalf("endpoint %q", k.EtcdEndpoint())
	}
}
