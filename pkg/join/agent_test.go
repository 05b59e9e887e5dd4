package join

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An agent's start: a first join with the token (its node password saved only then); a
// restart after the token expired renews with the node's credentials; with no server it runs
// on what it stored; once its node was deleted, neither works.
func TestAgentStart(t *testing.T) {
	cl := startServer(t)
	tok, err := cl.store.Create(context.Background(), cl.ca, time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := Agent{Client: Client{Servers: []string{cl.url}, Token: tok, Timeout: 2 * time.Second}, Name: "n1", IP: "127.0.0.1",
		Dir: filepath.Join(dir, "tls"), PasswordFile: filepath.Join(dir, "pw")}
	res, err := a.Start(context.Background())
	if err != nil || res.Renewed || res.FromStore() {
		t.Fatalf("first join: %+v %v", res, err)
	}
	if _, err := os.Stat(a.PasswordFile); err != nil {
		t.Errorf("node password not saved: %v", err)
	}
	if err := res.Write(a.Dir); err != nil {
		t.Fatal(err)
	}
	cl.clock = cl.clock.Add(2 * time.Minute) // the token expired
	res, err = a.Start(context.Background())
	if err != nil || !res.Renewed {
		t.Fatalf("restart after the token expired: %+v %v", res, err)
	}
	if err := res.Write(a.Dir); err != nil {
		t.Fatal(err)
	}
	// Every server gone: the stored one and the configured one.
	js := filepath.Join(a.Dir, "join.json")
	raw, _ := os.ReadFile(js)
	os.WriteFile(js, []byte(strings.ReplaceAll(string(raw), cl.url, "https://127.0.0.1:1")), 0o600)
	down := a
	down.Client.Servers = []string{"https://127.0.0.1:1"}
	res, err = down.Start(context.Background())
	if err != nil || !res.FromStore() || res.Node.Name != "n1" || res.Settings.ClusterCIDR.String() != "10.42.0.0/16" {
		t.Fatalf("no server: %+v %v", res, err)
	}
	os.WriteFile(js, raw, 0o600)
	cl.client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(context.Background(), SecretName("n1"), metav1.DeleteOptions{})
	_, err = a.Start(context.Background())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "expired token") || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("deleted node with an expired token: %v", err)
	}
}
