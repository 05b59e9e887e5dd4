package config

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// DefaultNodePasswordFile is outside the data dir and /etc/outpost, which an uninstall removes:
// the same machine keeps its node name across re-installs.
const DefaultNodePasswordFile = "/etc/outpost-node/password"

// agentShared are the server flags that mean the same on an agent: its node's.
func agentShared(name string) bool {
	switch name {
	case "config", "data-dir", "runtime-dir", "node-name", "node-ip", "flannel-iface", "kubelet-arg",
		"kube-proxy-arg", "debug", "v", "default-runtime", "node-password-file",
		"private-registry":
		return true
	}
	return strings.HasPrefix(name, "gpu-")
}

// AgentFlags are `outpost agent`'s flags. Every name is also a config-file key.
func AgentFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"OUTPOST_URL"}, Usage: "server to join, https://HOST:6443 (repeatable: the first that answers is used)"},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"OUTPOST_TOKEN"}, Usage: "join token: the server's DATA/server/agent-token, or one from `outpost token create`"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"OUTPOST_TOKEN_FILE"}, Usage: "file holding the join token"},
	}
	for _, f := range ServerFlags() {
		if agentShared(f.Names()[0]) {
			flags = append(flags, f)
		}
	}
	return flags
}

// AgentOptionsFrom reads a parsed agent command line: the node's flags and the join's. The
// cluster-wide settings (CIDRs, DNS) come from the server at join.
func AgentOptionsFrom(c *cli.Context) AgentOptions {
	return AgentOptions{NodeOptions: nodeOptionsFrom(c), Servers: c.StringSlice("server"),
		Token: c.String("token"), TokenFile: c.String("token-file")}
}
