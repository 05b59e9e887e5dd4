package config

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/token"
)

// DefaultNodePasswordFile is outside the data dir and /etc/outpost, which an uninstall removes:
// the same machine keeps its node name across re-installs.
const DefaultNodePasswordFile = "/etc/outpost-node/password"

// JoinConfig is set on an agent: where and how it joins.
type JoinConfig struct {
	Servers      []string
	Token        token.Token
	PasswordFile string
}

// agentShared are the server flags that mean the same on an agent.
var agentShared = map[string]bool{"config": true, "data-dir": true, "runtime-dir": true, "node-name": true,
	"node-ip": true, "flannel-iface": true, "kubelet-arg": true, "kube-proxy-arg": true, "debug": true, "v": true, "default-runtime": true,
	"node-password-file": true}

// AgentFlags are `outpost agent`'s flags. Every name is also a config-file key.
func AgentFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"OUTPOST_URL"}, Usage: "server to join, https://HOST:6443 (repeatable: the first that answers is used)"},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"OUTPOST_TOKEN"}, Usage: "join token: the server's DATA/server/token, or one from `outpost token create`"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"OUTPOST_TOKEN_FILE"}, Usage: "file holding the join token"},
	}
	for _, f := range ServerFlags() {
		if n := f.Names()[0]; agentShared[n] || strings.HasPrefix(n, "gpu-") {
			flags = append(flags, f)
		}
	}
	return flags
}

// AgentOptionsFrom reads a parsed agent command line. Server-only settings get the server's
// defaults; the cluster-wide ones (CIDRs, DNS) come from the server at join.
func AgentOptionsFrom(c *cli.Context) (ServerOptions, []string, string) {
	o := ServerOptions{
		ConfigFile: c.String("config"), DataDir: c.String("data-dir"), RuntimeDir: c.String("runtime-dir"),
		WriteKubeconfig: "/dev/null", WriteKubeconfigMode: "0600", NodeName: c.String("node-name"), NodeIP: c.String("node-ip"),
		BindAddress: "0.0.0.0", HTTPSListenPort: 6443, ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16",
		ClusterDomain: "cluster.local", KineCompactInterval: 1, KineCompactBatch: 1, KinePollInterval: 1,
		KubeletArgs: c.StringSlice("kubelet-arg"), KubeProxyArgs: c.StringSlice("kube-proxy-arg"),
		Debug: c.Bool("debug"), Verbosity: c.Int("v"), Token: c.String("token"), TokenFile: c.String("token-file"),
		FlannelBackend: "vxlan", FlannelIface: c.String("flannel-iface"), GPU: gpuOptionsFrom(c),
		NodePasswordFile: c.String("node-password-file"), SecretsProvider: "secretbox",
	}
	return o, c.StringSlice("server"), c.String("node-password-file")
}

// CompleteAgent is Complete plus the join settings, which an agent must have.
func CompleteAgent(o ServerOptions, servers []string, passwordFile string, env Env) (*Config, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("--server is required (or OUTPOST_URL): the server to join, such as https://10.0.0.1:6443")
	}
	for _, s := range servers {
		if err := join.CheckURL(s); err != nil {
			return nil, err
		}
	}
	c, err := Complete(o, env)
	if err != nil {
		return nil, err
	}
	if c.Token == "" {
		return nil, fmt.Errorf("--token is required (or OUTPOST_TOKEN, --token-file): take it from the server's /var/lib/outpost/server/token or `outpost token create`")
	}
	t, err := token.Parse(c.Token)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	if passwordFile, err = absDir("--node-password-file", passwordFile); err != nil {
		return nil, err
	}
	c.Kubeconfig = ""
	c.Join = &JoinConfig{Servers: servers, Token: t, PasswordFile: passwordFile}
	return c, nil
}
