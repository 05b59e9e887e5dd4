package token

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestDeriveAgent(t *testing.T) {
	c := ca(t, "a")
	server, _ := Generate(c)
	a1, err := DeriveAgent(server)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := DeriveAgent(server)
	if a1 != a2 {
		t.Errorf("not deterministic: %v %v", a1, a2)
	}
	if _, err := Parse(a1.String()); err != nil || a1.CAHash != server.CAHash {
		t.Errorf("derived token %q: %v", a1, err)
	}
	if a1.Matches(server) || a1.ID == server.ID || strings.Contains(a1.Secret, server.Secret) {
		t.Errorf("agent token %v too close to the server token %v", a1, server)
	}
	other, _ := Generate(c)
	if b, _ := DeriveAgent(other); b.Matches(a1) {
		t.Error("two cluster tokens derive the same agent token")
	}
	if _, err := DeriveAgent(Token{}); err == nil {
		t.Error("derived from no token")
	}
}

func TestEnsureAgent(t *testing.T) {
	dir := t.TempDir()
	c := ca(t, "a")
	server, _ := Generate(c)
	write := func(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
	p := dir + "/agent-token"
	first, err := EnsureAgent(p, c, nil, server, write)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := DeriveAgent(server)
	if first != want {
		t.Errorf("default agent token %v, want the derived %v", first, want)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent token file: %v %v", fi, err)
	}
	// A rotated cluster token does not change a stored agent token.
	rotated, _ := Generate(c)
	if again, err := EnsureAgent(p, c, nil, rotated, write); err != nil || again != first {
		t.Errorf("after a cluster token change: %v %v", again, err)
	}
	if _, err := EnsureAgent(p, c, must("abcdef.0123456789abcdef"), server, write); err == nil || !strings.Contains(err.Error(), "--agent-token differs") {
		t.Errorf("another --agent-token given: %v", err)
	}
	given, err := EnsureAgent(dir+"/a2", c, must("abcdef.0123456789abcdef"), server, write)
	if err != nil || given.ID != "abcdef" || given.CAHash != server.CAHash {
		t.Errorf("given agent token: %v %v", given, err)
	}
}

type refuseAll struct{ asked int }

func (r *refuseAll) Check(context.Context, Token) error { r.asked++; return notAccepted() }

// The join API takes the agent token and the cluster token (from their files, read at each
// call) and asks the store for any other.
func TestCheckAny(t *testing.T) {
	dir := t.TempDir()
	c := ca(t, "a")
	server, _ := Generate(c)
	agent, _ := DeriveAgent(server)
	write := func(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
	for p, tok := range map[string]Token{dir + "/token": server, dir + "/agent-token": agent} {
		if err := write(p, []byte(tok.String()+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	files := []*File{{Path: dir + "/agent-token"}, {Path: dir + "/token"}}
	store := &refuseAll{}
	ctx := context.Background()
	for _, tok := range []Token{server, agent} {
		if err := CheckAny(ctx, tok, files, store); err != nil {
			t.Errorf("%s: %v", tok.ID, err)
		}
	}
	if store.asked != 0 {
		t.Error("the store was asked for a known token")
	}
	other, _ := Generate(c)
	if err := CheckAny(ctx, other, files, store); !errors.Is(err, ErrUnknown) || store.asked != 1 {
		t.Errorf("unknown token: %v (store asked %d)", err, store.asked)
	}
	// Rotated on disk: the old agent token stops at once.
	next, _ := Generate(c)
	write(dir+"/agent-token", []byte(next.String()+"\n"))
	if err := CheckAny(ctx, agent, files, store); err == nil {
		t.Error("the old agent token still accepted")
	}
}
