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
			o := AgentOptions{NodeOptions: nodeDefaults(), Servers: tc.servers, Token: tc.token}
			_, err := CompleteAgent(o, testEnv())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	o := AgentOptions{NodeOptions: nodeDefaults(), Servers: []string{"https://a:6443", "https://b:6443"}, Token: tok}
	c, err := CompleteAgent(o, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Join.Servers) != 2 || c.Join.Token.ID != "abcdef" || c.Join.PasswordFile != "/etc/outpost-node/password" {
		t.Errorf("join config %+v", c.Join)
	}
	// The cluster's settings are not the agent's to choose: they come with the join.
	if c.Node.Cluster.ClusterCIDR != nil || c.Node.NodeName != "edge-1" {
		t.Errorf("agent node %+v", c.Node)
	}
}
