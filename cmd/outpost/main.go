// Command outpost is the whole distribution in one binary. The name it is called by picks the
// tool first (kubectl, ctr, crictl links), then the first argument does.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpostk8s/outpost/pkg/cli"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "outpost:", err)
		if cli.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
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
