package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/join"
)

// claimNodeName puts the server's own node under the same node-password binding as an
// agent's. The join API refuses the name outright; the record also keeps the name bound
// should the server ever run without it.
type claimNodeName struct {
	passwords join.Passwords
	node      string
	file      string
	log       *slog.Logger
}

func (c *claimNodeName) Name() string               { return "node-password" }
func (c *claimNodeName) Init(context.Context) error { return nil }
func (c *claimNodeName) Stop(context.Context) error { return nil }

func (c *claimNodeName) Start(ctx context.Context) error {
	pw, fresh, err := join.NodePassword(c.file)
	if err != nil {
		return err
	}
	for {
		var replaced bool
		if replaced, err = c.passwords.Take(ctx, c.node, pw); err == nil {
			if replaced {
				c.log.Warn("this server's node password differed from the one on record (password file lost?); recorded this machine's", "node", c.node, "file", c.file)
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
	if err := c.passwords.MarkKubeletServing(ctx, c.node); err != nil {
		c.log.Warn("the kubelet CA bundle keeps the server CA until this server's next start", "node", c.node, "err", err)
	}
	if fresh {
		return join.SaveNodePassword(c.file, pw)
	}
	return nil
}

var _ component.Component = (*claimNodeName)(nil)
