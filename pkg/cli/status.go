package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/status"
)

// statusCommand prints each component of the server or agent running here, by stage, with its
// health (k0s status): it fails when one is not ready, so scripts and probes can use it.
func statusCommand() *cli.Command {
	flags := dirFlags()
	return &cli.Command{
		Name:   "status",
		Usage:  "show the health of each component of the server or agent running on this machine",
		Flags:  flags,
		Before: applyToolConfig(flags),
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
			defer cancel()
			r, err := status.Fetch(ctx, dirs(c).StatusSocket())
			if err != nil {
				return fmt.Errorf("%w: start it, or give its --runtime-dir", err)
			}
			if bad := status.Print(os.Stdout, r, time.Now()); bad > 0 {
				return fmt.Errorf("%d component(s) not ready", bad)
			}
			return nil
		},
	}
}
