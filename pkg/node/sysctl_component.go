package node

import (
	"context"
	"log/slog"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/node/sysctl"
)

// kernelSettings turns on what pod networking needs (pkg/node/sysctl) before containerd runs,
// warning where the host forbids a setting.
type kernelSettings struct {
	root string
	log  *slog.Logger
}

var _ component.Component = (*kernelSettings)(nil)

func (k *kernelSettings) Name() string                { return "sysctl" }
func (k *kernelSettings) Start(context.Context) error { return nil }
func (k *kernelSettings) Stop(context.Context) error  { return nil }

func (k *kernelSettings) Init(context.Context) error {
	for _, w := range sysctl.Ensure(k.root) {
		k.log.Warn(w)
	}
	return nil
}
