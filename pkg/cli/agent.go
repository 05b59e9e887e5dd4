package cli

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/roles/agent"
	"github.com/outpostk8s/outpost/pkg/version"
)

func agentCommand() *cli.Command {
	line := config.AgentCommandLine()
	return &cli.Command{
		Name:         "agent",
		Usage:        "join this machine to a cluster as a worker node",
		Flags:        withHelp(line.Flags),
		OnUsageError: usageError,
		Before:       applyConfigFile(line.Flags, line.ConfigFile),
		Action:       func(c *cli.Context) error { return runAgent(c, line.Options(c)) },
	}
}

func runAgent(c *cli.Context, o config.AgentOptions) error {
	started := time.Now()
	host, err := startGuard(c, "agent")
	if err != nil {
		return err
	}
	cfg, err := config.CompleteAgent(o, config.RealEnv())
	if err != nil {
		return err
	}
	n := cfg.Node
	checked, err := agent.Check(c.Context, cfg, host)
	if err != nil {
		return err
	}
	res := checked.Joined
	lock, err := checked.Lock()
	if err != nil {
		return err
	}
	defer lock.Release()
	processSetup(n, res.Lifetime(n.Dirs.AgentTLS()))

	out, log, guard := setupLogging(n.Verbosity)
	for _, w := range res.Warnings() {
		log.Warn(w)
	}
	if res.Renewed {
		log.Info("renewed this node's certificates with its own credentials (no token needed)", "server", res.Server)
	}
	if res.FromStore() {
		log.Warn("no server answers: starting on the credentials of the last join; the node reconnects when a server is back", "servers", cfg.Join.Servers)
	}
	log.Info("starting outpost agent", "version", version.Outpost, "server", res.Server, "node", n.NodeName,
		"node-ip", n.NodeIP.String(), "data-dir", n.Dirs.Data, "cluster-cidr", n.Cluster.ClusterCIDR.String())

	ctx, done := runContext(guard)
	a := &agent.Agent{Cfg: cfg, Joined: res, Log: log, Out: out, Guard: guard, Started: started, GPU: checked.GPU}
	return done(a.Run(ctx))
}
