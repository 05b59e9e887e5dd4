package cli

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/info"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

func gpuCommand() *cli.Command {
	return &cli.Command{
		Name:  "gpu",
		Usage: "NVIDIA GPUs on this node",
		Subcommands: []*cli.Command{{
			Name:         "info",
			Usage:        "print the GPUs, MIG devices, NVLink peers, driver and CUDA versions",
			OnUsageError: usageError,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: datadir.DefaultDataDir, Usage: "where the bundled GPU helper is unpacked"},
				&cli.StringFlag{Name: "gpu-driver-root", Value: "/", Usage: "where the NVIDIA driver is installed"},
				&cli.StringFlag{Name: "gpu-mock", Hidden: true},
			},
			Action: func(c *cli.Context) error {
				var lib gpulib.Lib
				if c.String("gpu-mock") == "dgxa100" {
					lib = mockgpu.DGXA100()
				} else {
					var err error
					if lib, err = node.DriverGPULib(c.String("gpu-driver-root"), ""); err != nil {
						return err
					}
				}
				n, err := lib.Detect()
				if errors.Is(err, detect.ErrNoDriver) {
					return fmt.Errorf("no NVIDIA GPU driver on this node (%v): install the driver, or check that the nvidia kernel module is loaded", err)
				} else if err != nil {
					return err
				}
				if c.Bool("json") {
					return info.JSON(c.App.Writer, n)
				}
				return info.Table(c.App.Writer, n)
			},
		}},
	}
}
