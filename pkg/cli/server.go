package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/server"
	"github.com/outpostk8s/outpost/pkg/version"
)

func serverCommand() *cli.Command {
	flags := config.ServerFlags()
	return &cli.Command{
		Name:         "server",
		Usage:        "run a cluster's server: datastore, control plane and this node",
		Flags:        flags,
		OnUsageError: usageError,
		Before:       applyConfigFile(flags),
		Action:       runServer,
	}
}

// applyConfigFile merges config.yaml and config.yaml.d/*.yaml under the command line.
func applyConfigFile(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		explicit := c.IsSet("config")
		files, err := config.Files(c.String("config"), explicit)
		if err != nil {
			return err
		}
		return config.Apply(files, config.KnownFlags(flags), c)
	}
}

func runServer(c *cli.Context) error {
	started := time.Now()
	host, err := startGuard(c, "server")
	if err != nil {
		return err
	}
	cfg, err := config.Complete(config.ServerOptionsFrom(c), config.RealEnv())
	if err != nil {
		return err
	}
	if err := hostReady(host, cfg); err != nil {
		return err
	}
	scrubEnv()
	server.TuneReloads(cfg.LeafLifetime)
	lock, err := lockDataDir(cfg)
	if err != nil {
		return err
	}
	defer lock.Release()

	out, log := setupLogging(cfg.Verbosity)
	log.Info("starting outpost server", "version", version.Outpost, "kubernetes", version.Kubernetes,
		"node", cfg.NodeName, "node-ip", cfg.NodeIP.String(), "data-dir", cfg.Dirs.Data, "cgroup-v2", cfg.Host.CgroupV2,
		"restrict-oom-score-adj", cfg.Host.OOMScoreAdjRestricted)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &server.Server{Cfg: cfg, Log: log, Out: out, Started: started}
	return s.Run(ctx)
}

// scrubEnv drops OUTPOST_* from this process's environment once the command line is read:
// they may hold the join token, and the in-process kubelet and kube-proxy run tools
// (iptables, mount) that would inherit them.
func scrubEnv() {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OUTPOST_") {
			os.Unsetenv(name)
		}
	}
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

// hostReady runs the fatal host checks and checks the GPU settings against the hardware.
func hostReady(host hostcheck.Host, cfg *config.Config) error {
	if chk, bad := hostcheck.FirstFatal(host.Checks()); bad {
		return fmt.Errorf("host not ready: %s: %s — fix: %s (run 'outpost check-config' for every check)", chk.Name, chk.Detail, chk.Fix)
	}
	return server.CheckGPU(cfg)
}

// setupLogging routes every component's logs (klog included) through one handler.
func setupLogging(verbosity int) (*logging.Out, *slog.Logger) {
	out := logging.Setup(verbosity)
	level := slog.LevelInfo
	if verbosity >= 4 {
		level = slog.LevelDebug
	}
	log := slog.New(logging.NewHandler(out, level))
	slog.SetDefault(log)
	return out, log
}

// lockDataDir refuses a second server on the same data dir, then a port taken by another
// program, before anything is written: a refused start leaves no files behind.
func lockDataDir(cfg *config.Config) (*datadir.Lock, error) {
	var lock *datadir.Lock
	if _, err := os.Stat(cfg.Dirs.Lock()); err == nil {
		if lock, err = datadir.Acquire(cfg.Dirs.Lock()); err != nil {
			return nil, err
		}
	}
	if err := checkPorts(cfg); err != nil {
		lock.Release()
		return nil, err
	}
	if lock != nil {
		return lock, nil
	}
	if err := writable(cfg.Dirs.Data); err != nil {
		return nil, err
	}
	l, err := datadir.Acquire(cfg.Dirs.Lock())
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable (%w): choose another --data-dir or fix its permissions", cfg.Dirs.Data, err)
	}
	return l, nil
}

// writable creates the data dir (and parents) or explains why it cannot.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not writable (%v): choose another --data-dir or fix its permissions", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (%v): choose another --data-dir or fix its permissions", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

func checkPorts(cfg *config.Config) error {
	type port struct {
		addr  string
		port  int
		owner string
		fix   string
	}
	var ports []port
	if !cfg.DisableAgent {
		ports = []port{
			{"0.0.0.0", 10250, "kubelet", "stop the other kubelet (k3s, kubeadm?)"},
			{"127.0.0.1", 10248, "kubelet healthz", "stop the other kubelet"},
			{"127.0.0.1", 10256, "kube-proxy healthz", "stop the other kube-proxy"},
		}
	}
	if cfg.Join != nil {
		ports = append(ports, port{"127.0.0.1", 6444, "agent load balancer", "stop the other agent"})
	} else {
		ports = append(ports, port{cfg.BindAddress, cfg.HTTPSPort, "kube-apiserver", "set --https-listen-port"},
			port{"127.0.0.1", 10257, "kube-controller-manager", "stop the other control plane"},
			port{"127.0.0.1", 10259, "kube-scheduler", "stop the other control plane"})
	}
	for _, p := range ports {
		if err := server.ListenCheck(p.addr, p.port, p.owner, p.fix); err != nil {
			return err
		}
	}
	return nil
}
