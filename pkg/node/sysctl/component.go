package sysctl

import (
	"context"
	"log/slog"
)

// Component turns on what pod networking needs (Ensure) before containerd runs, warning where
// the host forbids a setting.
type Component struct {
	Root string
	Log  *slog.Logger
}

func (k *Component) Name() string                { return "sysctl" }
func (k *Component) Start(context.Context) error { return nil }
func (k *Component) Stop(context.Context) error  { return nil }

func (k *Component) Init(context.Context) error {
	for _, w := range Ensure(k.Root) {
		k.Log.Warn(w)
	}
	return nil
}
