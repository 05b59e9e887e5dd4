package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gctune"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/roles/server"
	"github.com/outpostk8s/outpost/pkg/spec/configfile"
	"github.com/outpostk8s/outpost/pkg/version"
)

func serverCommand() *cli.Command {
	line := config.ServerCommandLine()
	return &cli.Command{
		Name:         "server",
		Usage:        "run a cluster's server: datastore, control plane and this node",
		Flags:        withHelp(line.Flags),
		OnUsageError: usageError,
		Before:       applyConfigFile(line.Flags, line.ConfigFile),
		Action:       func(c *cli.Context) error { return runServer(c, line.Options(c)) },
	}
}

// applyConfigFile merges config.yaml and config.yaml.d/*.yaml under the command line.
func applyConfigFile(flags []cli.Flag, file func(*cli.Context) (string, bool)) cli.BeforeFunc {
	return func(c *cli.Context) error {
		files, err := configfile.Files(file(c))
		if err != nil {
			return err
		}
		return configfile.Apply(files, config.KnownFlags(flags), c)
	}
}

func runServer(c *cli.Context, o config.ServerOptions) error {
	started := time.Now()
	host, err := startGuard(c, "server")
	if err != nil {
		return err
	}
	cfg, err := config.CompleteServer(o, config.RealEnv())
	if err != nil {
		return err
	}
	checked, err := server.Check(cfg, host)
	if err != nil {
		return err
	}
	defer checked.Discard()
	lock, err := checked.Lock()
	if err != nil {
		return err
	}
	defer lock.Release()
	processSetup(cfg.Node, cfg.Control.LeafLifetime)

	out, log, guard := setupLogging(cfg.Control.Verbosity)
	log.Info("starting outpost server", "version", version.Outpost, "kubernetes", version.Kubernetes,
		"node", cfg.Control.NodeName, "node-ip", cfg.Control.NodeIP.String(), "data-dir", cfg.Control.Dirs.Data,
		"with-node", cfg.Node != nil)
	if cfg.Node != nil {
		log.Info("host", "cgroup-v2", cfg.Node.Host.CgroupV2, "restrict-oom-score-adj", cfg.Node.Host.OOMScoreAdjRestricted)
	}

	ctx, done := runContext(guard)
	s := &server.Server{Cfg: cfg, Log: log, Out: out, Guard: guard, Started: started, Restore: checked.Restore, Join: checked.Join, GPU: checked.GPU}
	return done(s.Run(ctx))
}

// processSetup sets what is process-wide, once the command line is read and before anything
// starts: it drops OUTPOST_* from the environment (they may hold the join token, and the
// in-process kubelet and kube-proxy run tools that would inherit them), names the node for
// flannel (its subnet manager reads NODE_NAME and nothing else; containerd and its shims
// inherit it, harmlessly), tunes certificate reloads to the leaf lifetime, and sets the GC
// default (GOGC, inherited by containerd and its shims) unless the user set one.
func processSetup(n *config.Node, leafLifetime time.Duration) {
	// Only the environment can fail here, and then the runtime keeps Go's default.
	_, _ = gctune.Apply(gctune.Host{Getenv: os.Getenv, Setenv: os.Setenv, SetGCPercent: debug.SetGCPercent})
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OUTPOST_") {
			os.Unsetenv(name)
		}
	}
	if n != nil {
		os.Setenv("NODE_NAME", n.NodeName)
	}
	tuneReloads(leafLifetime)
}

// startGuard refuses arguments and a user other than root, before the config is read.
func startGuard(c *cli.Context, cmd string) (hostcheck.Host, error) {
	if c.NArg() > 0 {
		return hostcheck.Host{}, UsageError{fmt.Errorf("unexpected argument %q: outpost %s takes only flags (see --help)", c.Args().First(), cmd)}
	}
	host := hostcheck.Real()
	if host.Euid() != 0 {
		return hostcheck.Host{}, fmt.Errorf("outpost %s must run as root: run it with sudo, or as a service", cmd)
	}
	return host, nil
}

// setupLogging routes every component's logs (klog included) through one handler, and turns
// the embedded libraries' klog and logrus Fatal calls into errors the role handles.
func setupLogging(verbosity int) (*logging.Out, *slog.Logger, *logging.Guard) {
	guard := logging.NewGuard()
	out := logging.Setup(verbosity, guard)
	level := slog.LevelInfo
	if verbosity >= 4 {
		level = slog.LevelDebug
	}
	log := slog.New(logging.NewHandler(out, level))
	slog.SetDefault(log)
	return out, log, guard
}

// errLibraryFatal is a component ended by its library's Fatal (klog's or logrus's).
var errLibraryFatal = errors.New("ended by its own library")

// runContext is the role's context: it ends on SIGINT or SIGTERM, or when an embedded
// library's Fatal ends a component that has no way back of its own (the stop is then
// clean, and done returns the error naming it). The guard hears of the stop before the
// context ends, so that no component's canceled call is logged as an ERROR.
func runContext(guard *logging.Guard) (context.Context, func(error) error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := func(cause error) {
		guard.Stopping()
		cancel(cause)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			stop(nil)
		case <-ctx.Done():
		}
	}()
	guard.Otherwise(func(comp, msg string) { stop(fmt.Errorf("%s %w: %s", comp, errLibraryFatal, msg)) })
	return ctx, func(err error) error {
		if cause := context.Cause(ctx); err == nil && errors.Is(cause, errLibraryFatal) {
			err = cause
		}
		signal.Stop(sigs)
		cancel(nil)
		return err
	}
}
