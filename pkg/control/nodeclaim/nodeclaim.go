// Package nodeclaim binds the server's own node name by node password, as an agent's is
// bound at its join, so that no join takes it.
package nodeclaim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/join"
)

// Claim puts the server's own node under the same node-password binding as an
// agent's. The join API refuses the name outright; the record also keeps the name bound
// should the server ever run without it.
type Claim struct {
	Passwords join.Passwords
	Node      string
	File      string // where this machine's password is kept
	Log       *slog.Logger
}

func (c *Claim) Name() string               { return "node-password" }
func (c *Claim) Init(context.Context) error { return nil }
func (c *Claim) Stop(context.Context) error { return nil }

func (c *Claim) Start(ctx context.Context) error {
	pw, fresh, err := join.NodePassword(c.File)
	if err != nil {
		return err
	}
	for {
		var replaced bool
		if replaced, err = c.Passwords.Take(ctx, c.Node, pw); err == nil {
			if replaced {
				c.Log.Warn("this server's node password differed from the one on record (password file lost?); recorded this machine's", "node", c.Node, "file", c.File)
			}
			break
		}
		// RBAC for the supervisor identity may still be on its way in (deploy applies it
		// first, within a second of the apiserver's start). The kubelet waits for this claim:
		// a short retry keeps a first start from waiting most of a second more than it must.
		select {
		case <-ctx.Done():
			return fmt.Errorf("record this server's node password: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Prepare issued this server's serving certificate from the kubelet CA (pki re-issues one
	// from another CA), and the record says so: kubelets are verified without the server CA
	// once every node's record does.
	if err := c.Passwords.MarkKubeletServing(ctx, c.Node); err != nil {
		c.Log.Warn("the kubelet CA bundle keeps the server CA until this server's next start", "node", c.Node, "err", err)
	}
	if fresh {
		return join.SaveNodePassword(c.File, pw)
	}
	return nil
}

var _ component.Component = (*Claim)(nil)
