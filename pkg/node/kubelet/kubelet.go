package kubelet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Run runs the upstream kubelet with argv until ctx ends; pkg/node/upstream provides it, so
// that this package does not link the Kubernetes tree.
type Run func(ctx context.Context, argv []string) error

// Kubelet is the node's kubelet: Init writes its config file, Start runs it in this process,
// and it is ready when its healthz answers.
type Kubelet struct {
	component.InProcess
	cfg  Config
	argv []string
}

var _ component.Component = (*Kubelet)(nil)

// New checks the config and returns the component; nothing is written until Init.
func New(c Config, run Run) (*Kubelet, error) {
	argv, err := Args(c)
	if err != nil {
		return nil, fmt.Errorf("kubelet args: %w", err)
	}
	k := &Kubelet{cfg: c, argv: argv}
	k.InProcess = component.InProcess{ComponentName: "kubelet", NoStop: true,
		Prepare: func(context.Context) error { return writeConfig(c) },
		Run:     func(ctx context.Context) error { return run(ctx, argv) },
		Probe:   HTTPProbe("http://127.0.0.1:10248/healthz")}
	return k, nil
}

// Config is what the kubelet was given; Argv what it runs with.
func (k *Kubelet) Config() Config { return k.cfg }
func (k *Kubelet) Argv() []string { return k.argv }

func writeConfig(c Config) error {
	b, err := Render(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.ConfigFile), 0o700); err != nil {
		return fmt.Errorf("kubelet config dir: %w", err)
	}
	return pki.WriteFile(c.ConfigFile, b, 0o600)
}

// HTTPProbe is ready when url answers 200.
func HTTPProbe(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error { return component.GetOK(ctx, client, url) }
}
