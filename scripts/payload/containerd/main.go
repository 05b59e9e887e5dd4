// Command containerd is containerd's daemon and, when called as ctr, its command-line client:
// one binary in Outpost's payload where upstream ships two, so the Go runtime and the
// packages they share are carried once.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/containerd/containerd/v2/cmd/ctr/app"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	ctx := context.Background()
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	var err error
	if name == "ctr" {
		err = app.New().Run(ctx, os.Args)
	} else {
		err = command.App().Run(ctx, os.Args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
