package config

import (
	"strings"
	"testing"
)

func TestCompleteAgent(t *testing.T) {
	const tok = "OP10" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "::abcdef.0123456789abcdef"
	for _, tc := range []struct {
		name    string
		servers []string
		token   string
		want    string
	}{
		{"no server", nil, tok, "--server is required"},
		{"http server", []string{"http://10.0.0.1:6443"}, tok, "want https://HOST:PORT"},
		{"server with path", []string{"https://10.0.0.1:6443/api"}, tok, "want https://HOST:PORT"},
		{"no token", []string{"https://10.0.0.1:6443"}, "", "--token is required"},
		{"bad token", []string{"https://10.0.0.1:6443"}, "K10abc::server:xyz", "malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaults()
			o.Token = tc.token
			_, err := CompleteAgent(o, tc.servers, "/etc/outpost-node/password", testEnv())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	o := defaults()
	o.Token = tok
	c, err := CompleteAgent(o, []string{"https://a:6443", "https://b:6443"}, "/etc/outpost-node/password", testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if c.Join == nil || len(c.Join.Servers) != 2 || c.Join.Token.ID != "abcdef" || c.Join.PasswordFile != "/etc/outpost-node/password" {
		t.Errorf("join config %+v", c.Join)
	}
}
