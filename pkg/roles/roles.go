// Package roles is the floor the roles stand on: what `outpost server` and `outpost agent`
// share to run (Role, Run, the status socket, WaitReady). Their assemblies sit beside it
// (roles/server, roles/agent, roles/node); no component package imports any of them.
package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/payload"
	"github.com/outpostk8s/outpost/pkg/status"
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

// RunOptions are what Run needs besides the role.
type RunOptions struct {
	PayloadDir string // DATA/data
	Log        *slog.Logger
	// Ready runs once every stage has started.
	Ready func(context.Context)
	// Status: the role and node named in `outpost status`, answered on StatusSocket.
	Status       status.Report
	StatusSocket string
}

// Run finds the bundled binaries (containerd, runc, CNI plugins) beside this program, prepares
// the role and runs its plan until ctx ends or a component dies, then stops everything in
// reverse. The components' health is served on the status socket meanwhile.
func Run(ctx context.Context, r Role, o RunOptions) error {
	binDir, err := PayloadBin(o.PayloadDir)
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
	m := &component.Manager{Plan: plan, ReadyTimeout: 3 * time.Minute, Log: o.Log}
	st := &status.Server{Socket: o.StatusSocket, Report: o.Status, Health: m.Health}
	if err := st.Start(); err != nil {
		return err
	}
	defer st.Stop()
	return m.Run(ctx, 45*time.Second, o.Ready)
}
