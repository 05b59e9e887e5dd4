package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// `outpost server --help` and `outpost agent --help` group their flags under topic headings,
// and grouping drops no flag.
func TestHelpGroupsFlags(t *testing.T) {
	for cmd, headings := range map[string][]string{
		"server": {"Client", "Cluster", "Components", "Data", "Datastore", "GPU", "Listener", "Logging", "Networking", "Node", "Security"},
		"agent":  {"Cluster", "Data", "GPU", "Logging", "Networking", "Node"},
	} {
		app := NewApp()
		var out bytes.Buffer
		app.Writer = &out
		if err := app.Run([]string{"outpost", cmd, "--help"}); err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		help := out.String()
		for _, h := range headings {
			if !strings.Contains(help, "\n   "+h+"\n\n") {
				t.Errorf("%s --help has no %q heading:\n%s", cmd, h, help)
			}
		}
		for _, f := range app.Command(cmd).Flags {
			name := "--" + f.Names()[0]
			if len(name) == 3 {
				name = name[1:] // -v
			}
			if vf, ok := f.(cli.VisibleFlag); ok && vf.IsVisible() && !strings.Contains(help, "   "+name+" ") && !strings.Contains(help, "   "+name+",") {
				t.Errorf("%s --help lacks %s", cmd, name)
			}
		}
	}
}
