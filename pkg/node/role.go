package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/payload"
)

// Role is what `outpost server` and `outpost agent` each run: files written before anything
// starts (Prepare), then the phases of components built from them.
type Role interface {
	Prepare() error
	Phases(binDir string) ([][]component.Component, error)
}

// UnpackPayload unpacks the bundled binaries into dir (once per payload) and returns their bin
// dir.
func UnpackPayload(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	return payload.Extract(payload.Assets(), dir, self)
}

// Run unpacks the bundled binaries (containerd, runc, CNI plugins) into payloadDir, prepares the
// role and runs its phases until ctx ends or a component dies, then stops everything in reverse.
// ready runs once every phase has started.
func Run(ctx context.Context, r Role, payloadDir string, log *slog.Logger, ready func(context.Context)) error {
	binDir, err := UnpackPayload(payloadDir)
	if err != nil {
		return err
	}
	if err := r.Prepare(); err != nil {
		return err
	}
	phases, err := r.Phases(binDir)
	if err != nil {
		return err
	}
	m := &component.Manager{Phases: phases, ReadyTimeout: 3 * time.Minute, Log: log}
	return m.Run(ctx, 45*time.Second, ready)
}
