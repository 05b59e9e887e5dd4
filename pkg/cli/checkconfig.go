package cli

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/gpu/preflight"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/prestart"
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
			// Judged as for a server with its node: what this host needs at most.
			return prestart.Plan{Node: true}.Fatal(checks)
		},
	}
}
