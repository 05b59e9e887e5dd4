package kubeproxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Run runs the upstream kube-proxy with argv until ctx ends (pkg/node/upstream provides it).
type Run func(ctx context.Context, argv []string) error

// KubeProxy is the node's kube-proxy: Init writes its config file, Start runs it in this
// process.
type KubeProxy struct {
	component.InProcess
	cfg  Config
	argv []string
}

var _ component.Component = (*KubeProxy)(nil)

// New checks the config and returns the component; nothing is written until Init.
func New(c Config, run Run) (*KubeProxy, error) {
	argv, err := Args(c)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy args: %w", err)
	}
	p := &KubeProxy{cfg: c, argv: argv}
	p.InProcess = component.InProcess{ComponentName: "kube-proxy", NoStop: true,
		Prepare: func(context.Context) error { return writeConfig(c) },
		Run:     func(ctx context.Context) error { return run(ctx, argv) }}
	return p, nil
}

// Config is what kube-proxy was given; Argv what it runs with.
func (p *KubeProxy) Config() Config { return p.cfg }
func (p *KubeProxy) Argv() []string { return p.argv }

func writeConfig(c Config) error {
	b, err := Render(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.ConfigFile), 0o700); err != nil {
		return fmt.Errorf("kube-proxy config dir: %w", err)
	}
	return pki.WriteFile(c.ConfigFile, b, 0o600)
}
