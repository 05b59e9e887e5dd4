package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/preflight"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/payload"
	"github.com/outpostk8s/outpost/pkg/prestart"
	"github.com/outpostk8s/outpost/pkg/roles"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

func checkConfigCommand() *cli.Command {
	return &cli.Command{
		Name:         "check-config",
		Usage:        "check whether this host can run Outpost, one line per check",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: datadir.DefaultDataDir, Usage: "where the bundled GPU helper is unpacked, on a host with an NVIDIA driver"},
		},
		Action: func(c *cli.Context) error {
			checks := append(hostcheck.Real().Checks(), payloadCheck())
			checks = append(checks, preflight.Checks("/", checkLib())...)
			for _, ch := range checks {
				fmt.Fprintln(c.App.Writer, ch.String())
			}
			// Judged as for a server with its node: what this host needs at most.
			return prestart.Plan{Node: true}.Fatal(checks)
		},
	}
}

// payloadCheck hashes every file of the payload this program runs from: a start only compares
// sizes and times.
func payloadCheck() hostcheck.Check {
	ch := hostcheck.Check{Name: "bundled binaries", Fatal: true, Node: true}
	bin, err := roles.PayloadBin("")
	if err == nil {
		err = payload.Verify(filepath.Dir(bin))
		ch.Detail = "verified in " + filepath.Dir(bin)
	}
	switch {
	case errors.Is(err, payload.ErrNoPayload):
		ch.Detail, ch.Fix = "none beside this program", "run the outpost file you downloaded (or bin/outpost), which unpacks them"
	case errors.Is(err, roles.ErrNoSelf):
		ch.Detail, ch.Fix = err.Error(), "mount /proc"
	case err != nil:
		ch.Detail = err.Error() // it names the fix
	}
	ch.OK = err == nil
	return ch
}

// checkLib is the GPU helper where libnvidia-ml exists, nil where it does not (no helper runs
// then), or a Lib that reports why the helper cannot be had.
func checkLib() gpulib.Lib {
	lib, err := node.DriverGPULib("/", "")
	if err != nil {
		return failedLib{gpulib.NoDriver{}, fmt.Errorf("found, but the GPU helper that reads it is not beside this program: %w", err)}
	}
	if _, none := lib.(gpulib.NoDriver); none {
		return nil
	}
	return lib
}

// failedLib answers Preflight with why there is no helper.
type failedLib struct {
	gpulib.NoDriver
	err error
}

func (f failedLib) Preflight() (*gpulib.Preflight, error) { return nil, f.err }
