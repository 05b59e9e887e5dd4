// Package cli is Outpost's command line: one file per command. Commands return errors; only
// main turns them into an exit status.
package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/version"
)

// UsageError marks a wrong command line (exit status 2).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// NewApp returns the urfave/cli application.
func NewApp() *cli.App {
	cli.VersionPrinter = func(*cli.Context) { fmt.Println(version.String()) }
	app := &cli.App{
		Name:                 "outpost",
		Usage:                "a lightweight Kubernetes for edge sites with NVIDIA GPUs",
		Version:              version.Outpost,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		OnUsageError:         usageError,
		Commands: []*cli.Command{
			serverCommand(),
			agentCommand(),
			checkConfigCommand(),
			gpuCommand(),
			tokenCommand(),
			certificateCommand(),
			secretsEncryptCommand(),
			snapshotCommand(),
			etcdCommand(),
			completionCommand(),
			statusCommand(),
			{Name: "kubectl", Usage: "run the bundled kubectl against this cluster", SkipFlagParsing: true,
				Action: func(c *cli.Context) error { return Kubectl(c.Args().Slice()) }},
			{Name: "ctr", Usage: "run the bundled containerd ctr against Outpost's containerd", SkipFlagParsing: true,
				Action: func(c *cli.Context) error { return Ctr(c.Args().Slice()) }},
			{Name: "crictl", Usage: "run the bundled crictl against Outpost's containerd", SkipFlagParsing: true,
				Action: func(c *cli.Context) error { return Crictl(c.Args().Slice()) }},
		},
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.CommandNotFound = func(c *cli.Context, name string) {}
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return UsageError{fmt.Errorf("unknown command %q: run 'outpost --help' for the list", c.Args().First())}
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

// withHelp lists --help among a command's flags: urfave sorts the flags under their
// categories before it adds --help itself, which the grouped help would then leave out.
func withHelp(flags []cli.Flag) []cli.Flag { return append(slices.Clip(flags), cli.HelpFlag) }

// usageError turns urfave's messages into one line that names the fix.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "flag provided but not defined: ") {
		flag := strings.TrimPrefix(msg, "flag provided but not defined: ")
		flag = "--" + strings.TrimLeft(flag, "-")
		msg = "unknown flag " + flag
	}
	return UsageError{fmt.Errorf("%s: run '%s --help' for the valid flags", msg, c.Command.HelpName)}
}

// IsUsage reports whether err is a wrong command line.
func IsUsage(err error) bool {
	var u UsageError
	return errors.As(err, &u)
}
