package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/payload"
)

// Role is what `outpost server` and `outpost agent` each run: files written before anything
// starts (Prepare), then the plan of components built from them.
type Role interface {
	Prepare() error
	Plan(binDir string) (*component.Plan, error)
}

// ErrNoSelf means this program cannot find its own path (no /proc).
var ErrNoSelf = errors.New("cannot find this program's own path")

// PayloadBin is the bin dir of the payload this program runs from (the outer binary unpacked
// it into payloadDir, DATA/data), with payloadDir/current pointed at it ("": left alone).
func PayloadBin(payloadDir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoSelf, err)
	}
	return payload.Locate(self, payloadDir)
}

// Run finds the bundled binaries (containerd, runc, CNI plugins) beside this program, prepares
// the role and runs its plan until ctx ends or a component dies, then stops everything in
// reverse. ready runs once every stage has started.
func Run(ctx context.Context, r Role, payloadDir string, log *slog.Logger, ready func(context.Context)) error {
	binDir, err := PayloadBin(payloadDir)
	if err != nil {
		return err
	}
	if err := r.Prepare(); err != nil {
		return err
	}
	plan, err := r.Plan(binDir)
	if err != nil {
		return err
	}
	m := &component.Manager{Plan: plan, ReadyTimeout: 3 * time.Minute, Log: log}
	return m.Run(ctx, 45*time.Second, ready)
}
