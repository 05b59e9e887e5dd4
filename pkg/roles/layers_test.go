package roles_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The roles floor (pkg/roles and the assemblies beside it) stands above every component: only
// the command line (pkg/cli) and the programs (cmd/) may import it. A component that did
// would make "where does this go?" have two answers again.
func TestNothingBelowImportsTheRoles(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	const module = "github.com/outpostk8s/outpost/"
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"pkg/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	above := func(p string) bool {
		rest, _ := strings.CutPrefix(p, module)
		return rest == "pkg/roles" || strings.HasPrefix(rest, "pkg/roles/") || rest == "pkg/cli" || strings.HasPrefix(rest, "cmd/")
	}
	packages := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		packages++
		if above(f[0]) {
			continue
		}
		for _, dep := range f[1:] {
			if strings.HasPrefix(dep, module+"pkg/roles") {
				t.Errorf("%s depends on %s, on the roles floor above it", f[0], dep)
			}
		}
	}
	if packages < 50 {
		t.Errorf("go list named %d packages: the check would miss some", packages)
	}
}
