package tests

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpostk8s/outpost/tests/harness"
)

// sizeCeilingMiB fails the test when the binary grows past today's size. Issue 13's goal is
// 75 MiB (the download, once it is a compressed self-extracting file): not met yet.
const sizeCeilingMiB = 245

// TestStaticBinary: the binary a user downloads has no interpreter and no shared library, and
// runs in an empty chroot: --version, and check-config prints its table (its exit may be
// non-zero there: there is no /proc). The GPU helper in the payload is the one dynamic part.
func TestStaticBinary(t *testing.T) {
	bin := harness.Bin(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	f.Close()
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	mib := float64(fi.Size()) / (1 << 20)
	t.Logf("binary %.1f MiB (ceiling %d MiB; goal 75 MiB)", mib, sizeCeilingMiB)
	if mib > sizeCeilingMiB {
		t.Errorf("binary %.1f MiB, over %d MiB", mib, sizeCeilingMiB)
	}

	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "outpost"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("/outpost", args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("--version")
	if err != nil || !strings.Contains(out, "kubernetes v1.") {
		t.Fatalf("--version in an empty chroot: %v\n%s", err, out)
	}
	out, _ = run("check-config")
	for _, want := range []string{"cgroup version", "tool iptables", "nvidia gpu"} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config in an empty chroot lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "not found") && strings.Contains(out, "ld-linux") {
		t.Errorf("check-config crashed:\n%s", out)
	}
}
