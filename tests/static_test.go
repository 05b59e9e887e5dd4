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

// sizeLimitMiB is issue 13's limit for the file a user downloads, every packaged component in.
const sizeLimitMiB = 75

// TestStaticBinary: the file a user downloads (the outer binary) and the outpost program it
// unpacks have no interpreter and no shared library, and run in an empty chroot: --version,
// and check-config prints its table (its exit may be non-zero there: there is no /proc). The
// GPU helper in the payload is the one dynamic part. The file is at most 75 MiB; a damaged
// file or unpacked payload is refused with the fix.
func TestStaticBinary(t *testing.T) {
	bin := harness.Bin(t)
	dir, err := harness.Unpack(bin, harness.SharedPayload())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bin, filepath.Join(dir, "bin", "outpost")} {
		assertStatic(t, b)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	mib := float64(fi.Size()) / (1 << 20)
	t.Logf("download %.1f MiB (limit %d MiB)", mib, sizeLimitMiB)
	if mib > sizeLimitMiB {
		t.Errorf("%s is %.1f MiB, over %d MiB", bin, mib, sizeLimitMiB)
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
	// The outer binary answers it: the installer's check that a download runs writes nothing.
	if _, err := os.Stat(filepath.Join(root, "var")); !os.IsNotExist(err) {
		t.Errorf("--version wrote to the data dir: %v", err)
	}
	out, _ = run("check-config")
	// Without /proc the payload check cannot find the running program: it says so.
	for _, want := range []string{"cgroup version", "tool iptables", "nvidia gpu", "bundled binaries"} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config in an empty chroot lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "not found") && strings.Contains(out, "ld-linux") {
		t.Errorf("check-config crashed:\n%s", out)
	}

	t.Run("DamagedPayloadDir", func(t *testing.T) {
		payloads, _ := filepath.Glob(filepath.Join(root, "var/lib/outpost/data/*/bin/runc"))
		if len(payloads) != 1 {
			t.Fatalf("unpacked payload in the chroot: %v", payloads)
		}
		runc := payloads[0]
		b, _ := os.ReadFile(runc)
		b[len(b)/2] ^= 0xff
		os.WriteFile(runc, b, 0o755)
		hashDir := "/" + strings.TrimPrefix(filepath.Dir(filepath.Dir(runc)), root+"/")
		out, err := run("check-config")
		if err == nil || !strings.Contains(out, "bin/runc") || !strings.Contains(out, "delete "+hashDir) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("a damaged payload ran or was not named with the fix: %v\n%s", err, out)
		}
	})
	t.Run("DamagedDownload", func(t *testing.T) {
		bad := append([]byte{}, data...)
		bad[len(bad)/2] ^= 0xff
		os.RemoveAll(filepath.Join(root, "var"))
		os.WriteFile(filepath.Join(root, "outpost"), bad, 0o755)
		out, err := run("check-config")
		if err == nil || !strings.Contains(out, "re-download") {
			t.Errorf("a damaged download ran or was not named: %v\n%s", err, out)
		}
		if left, _ := filepath.Glob(filepath.Join(root, "var/lib/outpost/data/*/bin")); len(left) != 0 {
			t.Errorf("a damaged download left %v", left)
		}
	})
}

func assertStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}
