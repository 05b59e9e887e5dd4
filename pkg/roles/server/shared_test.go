package server

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
)

// Two servers on one external datastore (an SQLite DSN stands in for a database: kine serves
// both the same way) share one cluster: the second gets the first's CAs and keys from the
// datastore, opened with the token; a wrong or missing token is refused. Their own
// controllers run under a Lease, the scheduler and controller-manager elect a leader.
func TestServersShareADatastore(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "shared.db") + "?_journal_mode=WAL"
	first, phases := assemble(t, func(o *config.ServerOptions) { o.DatastoreEndpoint, o.DisableAgent = dsn, true })
	names := layout(t, phases)
	if last := names[component.StageControllers]; !slices.Contains(last, "leader-elected") || slices.Contains(last, "deploy") ||
		slices.Contains(last, "helm-controller") || slices.Contains(last, "gpu-runtimeclasses") || slices.Contains(last, "etcd-snapshot") {
		t.Errorf("shared datastore phases %v", names)
	}
	d1 := first.Cfg.Control.Dirs
	tok, err := os.ReadFile(d1.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	second, _ := assemble(t, func(o *config.ServerOptions) {
		o.DatastoreEndpoint, o.DisableAgent, o.Token = dsn, true, strings.TrimSpace(string(tok))
	})
	d2 := second.Cfg.Control.Dirs
	for _, f := range []string{"tls/server-ca.crt", "tls/server-ca.key", "tls/client-ca.key", "tls/service.key"} {
		a, _ := os.ReadFile(filepath.Join(d1.ServerDir(), f))
		b, _ := os.ReadFile(filepath.Join(d2.ServerDir(), f))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s differs between the servers", f)
		}
	}
	if a, b := readAll(t, filepath.Join(d1.TLS(), "serving-kube-apiserver.crt")), readAll(t, filepath.Join(d2.TLS(), "serving-kube-apiserver.crt")); a == b {
		t.Error("leaf certificates are each server's own")
	}
	// A server whose cluster-wide settings differ is refused before it writes anything, and
	// so is one without the cluster's Secrets encryption.
	for name, mod := range map[string]func(*config.ServerOptions){
		"--service-cidr is 10.44.0.0/16 here and 10.43.0.0/16 in the cluster": func(o *config.ServerOptions) {
			o.ServiceCIDR, o.ClusterDNS = "10.44.0.0/16", ""
		},
		"--secrets-encryption is true here and false in the cluster": func(o *config.ServerOptions) { o.SecretsEncryption = true },
	} {
		o := defaultsFor(t)
		o.DatastoreEndpoint, o.DisableAgent, o.Token = dsn, true, strings.TrimSpace(string(tok))
		mod(&o)
		cfg, err := config.CompleteServer(o, env())
		if err != nil {
			t.Fatal(err)
		}
		if err := checkShared(cfg.Control); err == nil || !strings.Contains(err.Error(), "critical configuration value mismatch: "+name) {
			t.Errorf("got %v, want %q", err, name)
		}
		if _, err := os.Stat(cfg.Control.Dirs.Data); !os.IsNotExist(err) {
			t.Errorf("%s: the check wrote the data dir", name)
		}
	}
	for name, token := range map[string]string{"no token": "", "wrong token": "abcdef.0123456789abcdef"} {
		o := defaultsFor(t)
		o.DatastoreEndpoint, o.DisableAgent, o.Token = dsn, true, token
		cfg, err := config.CompleteServer(o, env())
		if err != nil {
			t.Fatal(err)
		}
		err = (&Server{Cfg: cfg, Log: discard()}).Prepare()
		if err == nil || !strings.Contains(err.Error(), "token") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(cfg.Control.Dirs.ServerCAFile()); err == nil {
			t.Errorf("%s: a CA was written", name)
		}
	}
}

func readAll(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A datastore that does not answer stops the start with one line, within the check's time.
func TestUnreachableDatastore(t *testing.T) {
	o := defaultsFor(t)
	o.DatastoreEndpoint, o.DisableAgent = "postgres://postgres:secret@127.0.0.1:1/x?sslmode=disable", true
	cfg, err := config.CompleteServer(o, env())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = checkShared(cfg.Control)
	if err == nil || !strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unreachable datastore: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
	if _, err := os.Stat(cfg.Control.Dirs.Data); !os.IsNotExist(err) {
		t.Error("the check wrote the data dir")
	}
}
