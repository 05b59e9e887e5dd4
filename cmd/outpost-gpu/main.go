// Command outpost-gpu is the GPU helper: the one Outpost binary linked with cgo, because it
// loads the driver's libnvidia-ml (which a static binary cannot dlopen). The node's GPU layer
// starts it only where the library exists and talks to it over stdin/stdout (pkg/gpu/gpuhelper);
// it exits when its stdin closes. It needs the glibc the driver itself needs (see
// docs/architecture.md).
//
// The CDI spec's hooks run it too, as nvidia-cdi-hook (their first argument is a hook command,
// never a flag): it then answers with nvidia-container-toolkit's own hook commands, so a host
// needs no toolkit binary.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-cdi-hook/commands"
	"github.com/sirupsen/logrus"
	cliv3 "github.com/urfave/cli/v3"

	"github.com/outpostk8s/outpost/pkg/gpu/cudacheck"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/nvcdispec"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
)

func main() {
	if isHook(os.Args[1:]) {
		if err := hook(os.Args); err != nil {
			fmt.Fprintln(os.Stderr, "outpost-gpu:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], gpuhelper.ServeStdio); err != nil {
		fmt.Fprintln(os.Stderr, "outpost-gpu:", err)
		os.Exit(1)
	}
}

// run parses the flags and serves the library with serve.
func run(args []string, serve func(gpulib.Lib) error) error {
	fs := flag.NewFlagSet("outpost-gpu", flag.ContinueOnError)
	library := fs.String("library", gpulib.LibraryName, "path of libnvidia-ml")
	mock := fs.String("mock", "", "test only: serve the mock machine (dgxa100) instead of the driver")
	inject := fs.String("mock-inject", "", "test only: the file the mock reads driver events from")
	state := fs.String("mock-state", "", "test only: the file the mock keeps its MIG layout in")
	validate := fs.Bool("validate-device", false, "check the one device CUDA_VISIBLE_DEVICES names, print the result as JSON and exit (the helper runs itself so per device)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// libcuda sits beside libnvidia-ml wherever the driver is installed.
	cuda := cudacheck.LibraryName
	if strings.Contains(*library, "/") {
		cuda = filepath.Join(filepath.Dir(*library), cudacheck.LibraryName)
	}
	if *validate {
		return json.NewEncoder(os.Stdout).Encode(cudacheck.Run(cuda))
	}
	var lib gpulib.Lib
	switch *mock {
	case "":
		l := nvmllib.New(nvml.New(nvml.WithLibraryPath(*library)))
		l.Check = childCheck(*library)
		lib = l
	case "dgxa100":
		m := mockgpu.DGXA100()
		m.StateFile, m.InjectFile = *state, *inject
		if *inject != "" {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go m.WatchInjectFile(ctx, *inject)
		}
		lib = nvcdispec.Mock{Lib: m}
	default:
		return fmt.Errorf("--mock %q: only dgxa100 is known", *mock)
	}
	return serve(lib)
}

// childCheck validates one device in a child helper: CUDA reads CUDA_VISIBLE_DEVICES once per
// process, and a device that hangs or crashes the driver takes only the child with it.
func childCheck(library string) func(cudaID string) gpulib.Validation {
	return func(cudaID string) gpulib.Validation {
		fail := func(why string) gpulib.Validation { return gpulib.Validation{Reason: why} }
		self, err := os.Executable()
		if err != nil {
			return fail(fmt.Sprintf("find the helper: %v", err))
		}
		// Within the caller's limit for the whole call (gpuhelper.ValidateTimeout), so a hung
		// device reports itself rather than failing every device's answer.
		ctx, cancel := context.WithTimeout(context.Background(), gpuhelper.ValidateTimeout-15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, self, "--validate-device", "--library", library)
		cmd.Env = append(os.Environ(), "CUDA_VISIBLE_DEVICES="+cudaID)
		// A helper killed mid-check takes its checks with it: none is left holding a context.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fail(fmt.Sprintf("the check process: %v %s", err, bytes.TrimSpace(stderr.Bytes())))
		}
		var r cudacheck.Result
		if err := json.Unmarshal(out, &r); err != nil {
			return fail(fmt.Sprintf("the check process's answer: %v", err))
		}
		return gpulib.Validation{OK: r.OK, Reason: r.Reason, Millis: float64(r.Took) / float64(time.Millisecond)}
	}
}

// isHook reports whether the runtime runs the helper as a CDI hook: a hook command comes first,
// where the helper's own arguments are all flags.
func isHook(args []string) bool { return len(args) > 0 && !strings.HasPrefix(args[0], "-") }

// hook runs one of the toolkit's CDI hook commands (update-ldcache, create-symlinks, …) with
// args as the container runtime gave them.
func hook(args []string) error {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	c := commands.ConfigureCDIHookCommand(log, &cliv3.Command{
		Name:  "outpost-gpu",
		Usage: "the CDI spec's hooks (nvidia-cdi-hook's commands), run by the container runtime",
	})
	return c.Run(context.Background(), args)
}
