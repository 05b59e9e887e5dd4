package config

import (
	"github.com/urfave/cli/v2"
)

// DefaultNodePasswordFile is outside the data dir and /etc/outpost, which an uninstall removes:
// the same machine keeps its node name across re-installs.
const DefaultNodePasswordFile = "/etc/outpost-node/password"

// AgentCommandLine is `outpost agent`'s flags, bound to the AgentOptions they fill: the node's
// flags and where and how to join. The cluster-wide settings (CIDRs, DNS) come from the server
// at join. Every name is also a config-file key.
func AgentCommandLine() *CommandLine[AgentOptions] {
	o, b := &AgentOptions{}, &binder{}
	flags := append(nodeFlags(b, &o.NodeOptions),
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, Category: catCluster, EnvVars: []string{"OUTPOST_URL"}, Destination: b.strings(&o.Servers),
			Usage: "server to join, https://HOST:6443 (repeatable: the first that answers is used)"},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Category: catCluster, EnvVars: []string{"OUTPOST_TOKEN"}, Destination: &o.Token,
			Usage: "join token: the server's DATA/server/agent-token, or one from `outpost token create`"},
		&cli.StringFlag{Name: "token-file", Category: catCluster, EnvVars: []string{"OUTPOST_TOKEN_FILE"}, Destination: &o.TokenFile,
			Usage: "file holding the join token"},
	)
	return newCommandLine(o, b, flags)
}
