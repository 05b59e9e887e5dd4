// Package scheduler runs the upstream kube-scheduler in-process, without its command's
// signal handler.
package scheduler

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/outpostk8s/outpost/pkg/args"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Config is the scheduler's slice of the server config.
type Config struct {
	Kubeconfig string
	TLSDir     string
	// LeaderElect when other servers may run beside this one (a shared datastore): one
	// scheduler acts, the others wait on the Lease.
	LeaderElect bool
	Extra       []string
}

// Args is the deterministic argv.
func Args(c Config) ([]string, error) {
	return args.Build(map[string]string{
		"authentication-kubeconfig": c.Kubeconfig,
		"authorization-kubeconfig":  c.Kubeconfig,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                c.Kubeconfig,
		// One server: no lease to wait for after a restart.
		"leader-elect":         strconv.FormatBool(c.LeaderElect),
		"profiling":            "false",
		"secure-port":          "10259",
		"tls-cert-file":        filepath.Join(c.TLSDir, pki.SchedulerServing+".crt"),
		"tls-private-key-file": filepath.Join(c.TLSDir, pki.SchedulerServing+".key"),
	}, c.Extra)
}

// Scheduler is the in-process kube-scheduler.
type Scheduler struct{ component.InProcess }

var _ component.Component = (*Scheduler)(nil)

// New returns the component.
func New(c Config) (*Scheduler, error) {
	argv, err := Args(c)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler args: %w", err)
	}
	return &Scheduler{component.InProcess{ComponentName: "kube-scheduler", Run: func(ctx context.Context) error {
		opts := options.NewOptions()
		fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
		for _, f := range opts.Flags.FlagSets {
			fs.AddFlagSet(f)
		}
		if err := fs.Parse(argv); err != nil {
			return fmt.Errorf("kube-scheduler flags: %w", err)
		}
		if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
			return err
		}
		name, err := cache.NewInformerName("kube-scheduler")
		if err != nil {
			return err
		}
		opts.InformerName = name
		cc, sched, err := app.Setup(ctx, opts)
		if err != nil {
			return err
		}
		return app.Run(ctx, cc, sched)
	}}}, nil
}
