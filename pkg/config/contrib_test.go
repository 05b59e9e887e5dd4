package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/spec/configfile"
)

// withFile runs an app with flags and the config file path applied, as `outpost server` and
// `outpost agent` do, and hands the parsed context to check.
func withFile(t *testing.T, flags []cli.Flag, path string, check func(c *cli.Context) error) {
	t.Helper()
	app := &cli.App{Flags: flags, Action: check, ExitErrHandler: func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			files, err := configfile.Files(path, true)
			if err != nil {
				return err
			}
			return configfile.Apply(files, KnownFlags(flags), c)
		}}
	if err := app.Run([]string{"outpost"}); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The examples in contrib/ are what users copy: they must load and mean what they say.
func TestContribServerConfig(t *testing.T) {
	line := ServerCommandLine()
	withFile(t, line.Flags, "../../contrib/config/config.yaml", func(c *cli.Context) error {
		s, err := CompleteServer(line.Options(c), testEnv())
		if err != nil {
			return err
		}
		ctl := s.Control
		if !slices.Contains(ctl.SANs.DNS, "outpost.example.com") || ctl.SecretsProvider == "" ||
			ctl.Snapshots.Retention != 8 || ctl.StoragePath != "/var/lib/outpost/storage" {
			t.Errorf("server example not applied: %+v", ctl)
		}
		if n := s.Node; n.GPU.MIGStrategy != "mixed" || !slices.Contains(n.KubeletArgs, "max-pods=150") {
			t.Errorf("node part of the example not applied: %+v", n)
		}
		return nil
	})
}

func TestContribAgentConfig(t *testing.T) {
	line := AgentCommandLine()
	withFile(t, line.Flags, "../../contrib/config/agent-config.yaml", func(c *cli.Context) error {
		o := line.Options(c)
		if o.TokenFile != "/etc/outpost/token" || len(o.Servers) != 1 {
			t.Errorf("agent example: %+v", o)
		}
		// The token file is the site's: stand one in.
		o.TokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(o.TokenFile, []byte("OP10"+strings.Repeat("ab", 32)+"::abc123.0123456789abcdef\n"), 0o600); err != nil {
			return err
		}
		a, err := CompleteAgent(o, testEnv())
		if err != nil {
			return err
		}
		if a.Join.Servers[0] != "https://outpost.example.com:6443" || a.Node.GPU.MIGStrategy != "mixed" {
			t.Errorf("agent example not applied: %+v %+v", a.Join, a.Node.GPU)
		}
		return nil
	})
}
