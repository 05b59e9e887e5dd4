// Command outpost-outer is the file a user downloads as `outpost`: a small static program that
// carries the payload (pkg/payload: the outpost program itself, containerd, runc, the CNI
// plugins, the images) as one zstd archive, unpacks it once per version into DATA/data/<hash>,
// verified, and then runs bin/outpost from there with the same arguments, in its place (exec):
// `kubectl`, `ctr` and `crictl` links to this file work as they did. OUTPOST_UNPACK_ONLY=1
// unpacks and prints the payload dir instead.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/payload"
	"github.com/outpostk8s/outpost/pkg/payload/embedded"
	"github.com/outpostk8s/outpost/pkg/secretargs"
	"github.com/outpostk8s/outpost/pkg/version"
)

func main() {
	if err := run(os.Args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "outpost:", err)
		os.Exit(1)
	}
}

func run(argv, env []string) error {
	if len(argv) == 2 && (argv[1] == "--version" || argv[1] == "-v") && !payload.IsTool(filepath.Base(argv[0])) {
		// Answered here, as the inner program would: checking that a download runs (install.sh
		// does) writes nothing.
		fmt.Println(version.String())
		return nil
	}
	a, err := embedded.Archive()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 && len(argv) > 1 && (argv[1] == "server" || argv[1] == "agent") && !help(argv) {
		// Said before 400 MB are unpacked for nothing; the inner program checks it too.
		return fmt.Errorf("outpost %s must run as root (it runs containers and sets up the network): run it with sudo", argv[1])
	}
	dataDir := payload.DataDir(argv, os.Getenv)
	root := filepath.Join(dataDir, "data")
	if os.Geteuid() != 0 && dataDir == datadir.DefaultDataDir && !a.Unpacked(root) {
		// A user without a server's data dir (kubectl against a remote cluster, --help)
		// unpacks into their own cache, as k3s does under ~/.rancher. A data dir named
		// on purpose is used as named.
		if root, err = userRoot(); err != nil {
			return err
		}
	}
	dir, err := payload.Install(a, root)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%s is not writable, so the bundled binaries cannot be unpacked there (%w): choose another data dir with --data-dir, or run as root", root, err)
	} else if err != nil {
		return err
	}
	if os.Getenv("OUTPOST_UNPACK_ONLY") != "" {
		// For installers and for running the inner program under an emulator: unpack, say where.
		fmt.Println(dir)
		return nil
	}
	prog := filepath.Join(dir, filepath.FromSlash(payload.Program))
	argv, env = hideSecrets(argv, env)
	if err := syscall.Exec(prog, argv, env); err != nil {
		return fmt.Errorf("run %s: %w", prog, err)
	}
	return nil
}

// hideSecrets keeps the secrets on the command line (--token and the like) out of the
// inner program's /proc/PID/cmdline: they travel in its environment, which only root reads,
// and this process's own argument memory is overwritten before the exec.
func hideSecrets(argv, env []string) ([]string, []string) {
	// Only this program sets the variable for the next: one inherited from elsewhere goes.
	kept := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, secretargs.EnvVar+"=") {
			kept = append(kept, kv)
		}
	}
	own := secretargs.Own(argv)
	h := secretargs.Find(own)
	if len(h) == 0 {
		return argv, kept
	}
	masked := h.Masked(own)
	secretargs.Scrub(os.Args, h)
	return masked, append(kept, secretargs.EnvVar+"="+h.Encode())
}

func userRoot() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no data dir to unpack outpost into (not root, and %w): set HOME or XDG_CACHE_HOME", err)
	}
	return filepath.Join(cache, "outpost", "data"), nil
}

func help(argv []string) bool {
	for _, a := range argv[1:] {
		if a == "--help" || a == "-h" {
			return true
		}
	}
	return false
}
