// Command outpost is the whole distribution in one binary. The name it is called by picks the
// tool first (kubectl, ctr, crictl links), then the first argument does.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpostk8s/outpost/pkg/cli"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/secretargs"
)

func main() {
	defer func() {
		// An embedded library's klog.Fatal in start-up code: its line is logged already.
		r := recover()
		if code, ok := r.(logging.MainExit); ok {
			os.Exit(int(code))
		}
		if r != nil {
			panic(r)
		}
	}()
	argv, err := ownArgs()
	if err == nil {
		err = run(argv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost:", err)
		if cli.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// ownArgs is the command line to run: the secrets the outer binary handed over out of band
// put back, and those given here directly overwritten where other users can read them.
func ownArgs() ([]string, error) {
	argv := secretargs.Own(os.Args)
	if v, ok := os.LookupEnv(secretargs.EnvVar); ok {
		os.Unsetenv(secretargs.EnvVar)
		var err error
		if argv, err = secretargs.Restore(argv, v); err != nil {
			return nil, err
		}
	}
	secretargs.Scrub(os.Args, secretargs.Find(os.Args))
	return argv, nil
}

func run(argv []string) error {
	switch filepath.Base(argv[0]) {
	case "kubectl":
		return cli.Kubectl(argv[1:])
	case "ctr":
		return cli.Ctr(argv[1:])
	case "crictl":
		return cli.Crictl(argv[1:])
	}
	if len(argv) > 1 {
		switch argv[1] {
		case "kubectl":
			return cli.Kubectl(argv[2:])
		case "ctr":
			return cli.Ctr(argv[2:])
		case "crictl":
			return cli.Crictl(argv[2:])
		}
	}
	return cli.NewApp().Run(argv)
}
