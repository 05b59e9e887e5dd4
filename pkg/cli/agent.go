package cli

import (
	"context"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/server"
	"github.com/outpostk8s/outpost/pkg/version"
)

func agentCommand() *cli.Command {
	flags := config.AgentFlags()
	return &cli.Command{
		Name:         "agent",
		Usage:        "join this machine to a cluster as a worker node",
		Flags:        flags,
		OnUsageError: usageError,
		Before:       applyConfigFile(flags),
		Action:       runAgent,
	}
}

func runAgent(c *cli.Context) error {
	started := time.Now()
	host, err := startGuard(c, "agent")
	if err != nil {
		return err
	}
	o, servers, pwFile := config.AgentOptionsFrom(c)
	cfg, err := config.CompleteAgent(o, servers, pwFile, config.RealEnv())
	if err != nil {
		return err
	}
	if err := hostReady(host, cfg); err != nil {
		return err
	}
	scrubEnv()
	// Join before anything is written: a refused join leaves no data dir behind.
	jctx, cancel := context.WithTimeout(c.Context, time.Minute)
	res, cfg, err := server.Join(jctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	server.TuneReloads(res.Lifetime(cfg.Dirs.AgentTLS()))
	lock, err := lockDataDir(cfg) // checks the ports too
	if err != nil {
		return err
	}
	defer lock.Release()

	out, log := setupLogging(cfg.Verbosity)
	for _, w := range res.Warnings() {
		log.Warn(w)
	}
	if res.Renewed {
		log.Info("renewed this node's certificates with its own credentials (no token needed)", "server", res.Server)
	}
	if res.FromStore() {
		log.Warn("no server answers: starting on the credentials of the last join; the node reconnects when a server is back", "servers", cfg.Join.Servers)
	}
	log.Info("starting outpost agent", "version", version.Outpost, "server", res.Server, "node", cfg.NodeName,
		"node-ip", cfg.NodeIP.String(), "data-dir", cfg.Dirs.Data, "cluster-cidr", cfg.ClusterCIDR.String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &server.Server{Cfg: cfg, Log: log, Out: out, Started: started, Joined: res}
	return s.Run(ctx)
}
