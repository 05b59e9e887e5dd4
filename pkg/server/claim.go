package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outpostk8s/outpost/pkg/join"
)

// claimNodeName puts the server's own node under the same node-password binding as an
// agent's, so no token holder can join under the server's node name.
type claimNodeName struct {
	passwords join.Passwords
	node      string
	file      string
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
		err = c.passwords.Claim(ctx, c.node, pw)
		if err == nil || errors.Is(err, join.ErrNodeTaken) {
			break
		}
		// RBAC for the supervisor identity may still be on its way in.
		select {
		case <-ctx.Done():
			return fmt.Errorf("claim node name: %w", err)
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("this server's node name: %w", err)
	}
	if fresh {
		return join.SaveNodePassword(c.file, pw)
	}
	return nil
}
