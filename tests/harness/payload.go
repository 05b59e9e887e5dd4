package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SharedPayload is where the binary under test is unpacked once for the whole run; TestMain
// removes it.
func SharedPayload() string { return filepath.Join(os.TempDir(), "outpost-it-payload") }

// Unpack has the outer binary unpack its payload under root/data (as it does for a data dir
// root) and returns the payload dir.
func Unpack(bin, root string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	cfg := filepath.Join(root, ".unpack.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data-dir: %s\n", root)), 0o600); err != nil {
		return "", err
	}
	defer os.Remove(cfg)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OUTPOST_CONFIG_FILE="+cfg, "OUTPOST_UNPACK_ONLY=1")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", bin, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Seed gives dataDir the payload as hard links to the shared copy, as if the outer binary had
// unpacked it there: each test's server would otherwise unpack 400 MB. Tests of unpacking
// itself use their own dirs.
func Seed(t testing.TB, bin, dataDir string) {
	t.Helper()
	shared, err := Unpack(bin, SharedPayload())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dataDir, "data", filepath.Base(shared))
	if _, err := os.Stat(dst); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-al", shared, dst).CombinedOutput(); err != nil {
		t.Fatalf("seed %s: %v %s", dst, err, out)
	}
}

// StateIn lists what dataDir holds besides the payload the outer binary unpacks before the
// inner program reads its flags: a refused start may leave that, and nothing else.
func StateIn(dataDir string) []string {
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Name() != "data" {
			out = append(out, e.Name())
			continue
		}
		sub, _ := os.ReadDir(filepath.Join(dataDir, "data"))
		for _, p := range sub {
			if p.Name() == ".lock" { // the unpack's
				continue
			}
			if _, err := os.Stat(filepath.Join(dataDir, "data", p.Name(), "MANIFEST")); err != nil || len(p.Name()) != 16 {
				out = append(out, "data/"+p.Name())
			}
		}
	}
	return out
}
