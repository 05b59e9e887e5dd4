package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"
)

// --gpu-metrics-anonymous is a node flag: a server's and an agent's, off by default, and a
// config-file key under its own name or in the gpu: section.
func TestGPUMetricsAnonymous(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       bool
	}{
		{"default", "", false},
		{"key", "gpu-metrics-anonymous: true\n", true},
		{"gpu section", "gpu:\n  metrics-anonymous: true\n", true},
	} {
		for _, cmd := range []string{"server", "agent"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				flags, node := nodeLine(cmd)
				withFile(t, flags, path, func(c *cli.Context) error {
					if got := node(c).GPU.MetricsAnonymous; got != tc.want {
						t.Errorf("MetricsAnonymous = %v, want %v", got, tc.want)
					}
					return nil
				})
			})
		}
	}
}

// nodeLine is a fresh command line of server or agent, and the node options it fills.
func nodeLine(cmd string) ([]cli.Flag, func(*cli.Context) NodeOptions) {
	if cmd == "server" {
		l := ServerCommandLine()
		return l.Flags, func(c *cli.Context) NodeOptions { return l.Options(c).NodeOptions }
	}
	l := AgentCommandLine()
	return l.Flags, func(c *cli.Context) NodeOptions { return l.Options(c).NodeOptions }
}
