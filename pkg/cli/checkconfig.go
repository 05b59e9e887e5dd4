package cli

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/gpu/preflight"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

func checkConfigCommand() *cli.Command {
	return &cli.Command{
		Name:         "check-config",
		Usage:        "check whether this host can run Outpost, one line per check",
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			checks := append(hostcheck.Real().Checks(), preflight.Checks("/", nvml.New())...)
			for _, ch := range checks {
				fmt.Fprintln(c.App.Writer, ch.String())
			}
			if ch, bad := hostcheck.FirstFatal(checks, true); bad {
				return fmt.Errorf("this host cannot run Outpost yet: %s — fix: %s", ch.Name, ch.Fix)
			}
			return nil
		},
	}
}
