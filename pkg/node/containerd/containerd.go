package containerd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/node/registries"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/supervisor"
)

// Containerd is the component: it writes the config and keeps the child running. Pods outlive
// it: their shims are their own processes, so an Outpost restart leaves containers running.
type Containerd struct {
	cfg Config
	out io.Writer
	sup *supervisor.Supervisor
}

// New returns the component; out receives containerd's tagged log lines.
func New(c Config, out io.Writer) *Containerd { return &Containerd{cfg: c, out: out} }

func (c *Containerd) Name() string { return "containerd" }

// Init writes the config and creates the folders containerd expects.
func (c *Containerd) Init(context.Context) error {
	data, err := Render(c.cfg)
	if err != nil {
		return err
	}
	for _, d := range []string{c.cfg.Root, c.cfg.State, filepath.Dir(c.cfg.Socket), filepath.Dir(c.cfg.ConfigFile), c.cfg.CNIConfDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if c.cfg.RegistryDir != "" {
		var hosts map[string][]byte
		if c.cfg.Registries != nil {
			var proxy *registries.Proxy
			if c.cfg.RegistryProxy != nil {
				proxy = c.cfg.RegistryProxy.Address()
			}
			if proxy == nil && len(c.cfg.Registries.RewriteRoutes()) > 0 {
				return fmt.Errorf("registry rewrites need the registry proxy, which has not started")
			}
			hosts = registries.HostsFiles(c.cfg.Registries, proxy)
		}
		if err := registries.WriteHostsDir(c.cfg.RegistryDir, hosts); err != nil {
			return err
		}
	}
	return pki.WriteFile(c.cfg.ConfigFile, data, 0o600)
}

// Start launches the child.
func (c *Containerd) Start(context.Context) error {
	c.sup = supervisor.New(supervisor.Process{
		Name: "containerd",
		Path: filepath.Join(c.cfg.BinDir, "containerd"),
		Args: []string{"--config", c.cfg.ConfigFile},
		// The shim and runc are found through PATH; the bundled ones come first.
		Env: []string{"PATH=" + c.cfg.BinDir + ":" + os.Getenv("PATH")},
		Out: c.out,
		// Longer than the default: containerd flushes its metadata store on SIGTERM.
		StopTimeout: 30 * time.Second,
	})
	return c.sup.Start()
}

// Ready succeeds once the socket accepts connections.
func (c *Containerd) Ready(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.cfg.Socket)
	if err != nil {
		if c.sup != nil && c.sup.LastError() != nil {
			return fmt.Errorf("containerd socket %s: %w (last exit: %v)", c.cfg.Socket, err, c.sup.LastError())
		}
		return fmt.Errorf("containerd socket %s: %w", c.cfg.Socket, err)
	}
	return conn.Close()
}

// Stop ends containerd (not the pods).
func (c *Containerd) Stop(ctx context.Context) error {
	if c.sup == nil {
		return nil
	}
	return c.sup.Stop(ctx)
}

// Pid is the running containerd's process ID, 0 when none runs.
func (c *Containerd) Pid() int {
	if c.sup == nil {
		return 0
	}
	return c.sup.Pid()
}

// Config is what containerd was given.
func (c *Containerd) Config() Config { return c.cfg }

var _ component.Component = (*Containerd)(nil)
