package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/info"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
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
			Flags:        gpuFlags(),
			Action: func(c *cli.Context) error {
				_, n, err := detectGPUs(c)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return info.JSON(c.App.Writer, n)
				}
				return info.Table(c.App.Writer, n)
			},
		}, {
			Name: "validate",
			Usage: "run a small CUDA kernel on every GPU (or, in MIG mode, every MIG device) through the driver, " +
				"as a node does before it hands a device out; exits non-zero when one fails",
			OnUsageError: usageError,
			Flags:        gpuFlags(),
			Action: func(c *cli.Context) error {
				lib, n, err := detectGPUs(c)
				if err != nil {
					return err
				}
				vs, err := lib.Validate(layer.DeviceIDs(n))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					enc := json.NewEncoder(c.App.Writer)
					enc.SetIndent("", "  ")
					if err := enc.Encode(vs); err != nil {
						return err
					}
				} else {
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "DEVICE\tRESULT\tTIME\tREASON")
					for _, v := range vs {
						fmt.Fprintf(tw, "%s\t%s\t%.0f ms\t%s\n", v.ID, map[bool]string{true: "passed", false: "FAILED"}[v.OK], v.Millis, v.Reason)
					}
					tw.Flush()
				}
				failed := 0
				for _, v := range vs {
					if !v.OK {
						failed++
					}
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d GPU devices failed validation: see the reasons above", failed, len(vs))
				}
				return nil
			},
		}},
	}
}

// gpuFlags are the flags of the gpu subcommands.
func gpuFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: datadir.DefaultDataDir, Usage: "where the bundled GPU helper is unpacked"},
		&cli.StringFlag{Name: "gpu-driver-root", Value: "/", Usage: "where the NVIDIA driver is installed"},
		&cli.StringFlag{Name: "gpu-mock", Hidden: true},
		&cli.StringFlag{Name: "gpu-mock-inject", Hidden: true},
	}
}

// detectGPUs reads the GPUs through the bundled GPU helper (or the mock), saying what to do
// where there is no driver; the library stays for the command's other calls.
func detectGPUs(c *cli.Context) (gpulib.Lib, *detect.Node, error) {
	var lib gpulib.Lib
	if c.String("gpu-mock") == "dgxa100" {
		m := mockgpu.DGXA100()
		m.InjectFile = c.String("gpu-mock-inject")
		lib = m
	} else {
		var err error
		if lib, err = node.DriverGPULib(c.String("gpu-driver-root"), ""); err != nil {
			return nil, nil, err
		}
	}
	n, err := lib.Detect()
	if errors.Is(err, detect.ErrNoDriver) {
		return nil, nil, fmt.Errorf("no NVIDIA GPU driver on this node (%v): install the driver, or check that the nvidia kernel module is loaded", err)
	}
	return lib, n, err
}
