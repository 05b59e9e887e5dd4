package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestContribUnits: the service files in contrib/ are the ones install.sh writes.
func TestContribUnits(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("scripts/contrib-units.sh", dir)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("render: %v\n%s", err, out)
	}
	for _, f := range []string{"systemd/outpost.service", "systemd/outpost-agent.service", "openrc/outpost", "openrc/outpost-agent"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join("../contrib", f)); string(got) != string(want) {
			t.Errorf("contrib/%s differs from what install.sh writes: run `make contrib`\n%s", f, want)
		}
	}
	if out, err := exec.Command("sh", "-n", filepath.Join(dir, "openrc/outpost")).CombinedOutput(); err != nil {
		t.Errorf("OpenRC script: %v %s", err, out)
	}
}

// TestCompletion: `outpost completion` prints what contrib/ holds, and the bash script completes
// commands, subcommands and flags by asking the binary.
func TestCompletion(t *testing.T) {
	bin := harness.Bin(t)
	for shell, file := range map[string]string{"bash": "outpost.bash", "zsh": "_outpost"} {
		out, err := exec.Command(bin, "completion", shell).Output()
		if err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		if want, _ := os.ReadFile("../contrib/completion/" + file); string(out) != string(want) {
			t.Errorf("contrib/completion/%s differs from `outpost completion %s`: run `make contrib`", file, shell)
		}
	}
	if err := exec.Command(bin, "completion", "fish").Run(); err == nil {
		t.Error("completion fish: no error")
	}
	for line, want := range map[string]string{
		"se":                      "server",
		"server --cluster-i":      "--cluster-init",
		"etcd member r":           "remove",
		"agent --tok":             "--token --token-file",
		"etcd-snapshot sa":        "save",
		"gpu info --gpu-m":        "--gpu-mock",
		"certificate rotate --da": "--data-dir",
	} {
		words := append([]string{bin}, strings.Fields(line)...)
		script := `source ../contrib/completion/outpost.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _outpost_complete; echo "${COMPREPLY[@]}"`
		out, err := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...).Output()
		if err != nil || !strings.Contains(strings.TrimSpace(string(out)), want) {
			t.Errorf("bash completion of %q: %q %v, want %q", line, out, err, want)
		}
	}
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("no zsh (make deps installs it)")
	}
	zsh := `autoload -U compinit && compinit -u -D && source ../contrib/completion/_outpost && whence -w _outpost`
	if out, err := exec.Command("zsh", "-c", zsh).CombinedOutput(); err != nil || !strings.Contains(string(out), "function") {
		t.Errorf("zsh completion: %v %s", err, out)
	}
}
