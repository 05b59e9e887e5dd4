package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// dirFlags are the flags of a tool command that works on a node's data dir; like server and
// agent, it reads them from config.yaml (+ .d) too.
func dirFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: datadir.DefaultConfigFile, EnvVars: []string{"OUTPOST_CONFIG_FILE"}, Usage: "config file to read data-dir and runtime-dir from"},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: datadir.DefaultDataDir, Usage: "the server's or agent's data dir"},
		&cli.StringFlag{Name: "runtime-dir", Value: datadir.DefaultRuntimeDir, Usage: "the server's or agent's runtime dir"},
	}
}

// onlyOwn sets the config-file keys a command has and skips the server's and agent's others.
type onlyOwn struct {
	c   *cli.Context
	own map[string]bool
}

func (o onlyOwn) IsSet(name string) bool { return !o.own[name] || o.c.IsSet(name) }
func (o onlyOwn) Set(name, value string) error {
	return o.c.Set(name, value)
}

// applyToolConfig merges config.yaml under the command line for a tool command: keys of
// server and agent are valid there, and only the command's own are used.
func applyToolConfig(flags []cli.Flag) cli.BeforeFunc {
	return func(c *cli.Context) error {
		files, err := configfile.Files(c.String("config"), c.IsSet("config"))
		if err != nil {
			return err
		}
		return configfile.Apply(files, config.FileKeys(), onlyOwn{c: c, own: config.KnownFlags(flags)})
	}
}

// dirs reads the data and runtime dirs a tool command was given.
func dirs(c *cli.Context) datadir.Dirs {
	return datadir.Dirs{Data: c.String("data-dir"), Runtime: c.String("runtime-dir")}
}
