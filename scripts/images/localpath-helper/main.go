// Command localpath-helper is what local-path-provisioner's helper pod runs (its config's
// setupCommand and teardownCommand) in place of the upstream shell scripts, so the image needs
// no shell: `-a create` makes the volume directory, `-a delete` removes it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "localpath-helper:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("localpath-helper", flag.ContinueOnError)
	fs.SetOutput(out)
	path := fs.String("p", "", "the volume's directory")
	fs.String("s", "0", "size in bytes (directories have none)")
	mode := fs.String("m", "Filesystem", "volume mode")
	action := fs.String("a", "", "create or delete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := filepath.Clean(*path)
	// The volume lives in a directory of the storage path, never at or above its root.
	if !filepath.IsAbs(*path) || strings.Count(p, "/") < 2 || p != *path && p+"/" != *path {
		return fmt.Errorf("-p %q: want an absolute path at least two levels deep", *path)
	}
	if *mode != "Filesystem" {
		return fmt.Errorf("-m %q: only Filesystem volumes are supported", *mode)
	}
	switch *action {
	case "create":
		// The storage dir itself stays private to root; the volume is the pod's to use. On an
		// agent the kubelet made it (hostPath DirectoryOrCreate, 0755): close it.
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.Mkdir(p, 0o777); err != nil && !os.IsExist(err) {
			return err
		}
		return os.Chmod(p, 0o777)
	case "delete":
		return os.RemoveAll(p)
	}
	return fmt.Errorf("-a %q: want create or delete", *action)
}
