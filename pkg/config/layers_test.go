package config_test

import (
	"os/exec"
	"strings"
	"testing"
)

// config is read by every command, the small outer binary's tools among them: it may import
// leaf packages (pkg/spec and the like) but no component, or parsing flags would link, and
// could start depending on, the code the flags configure.
func TestConfigImportsNoComponent(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	const module = "github.com/outpostk8s/outpost/"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", module+"pkg/config").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	components := []string{"node", "gpu", "control", "roles", "datastore", "join"}
	for _, dep := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(dep, module+"pkg/")
		if !ok {
			continue
		}
		for _, c := range components {
			if rest == c || strings.HasPrefix(rest, c+"/") {
				t.Errorf("pkg/config depends on %s, a component package", dep)
			}
		}
	}
}
