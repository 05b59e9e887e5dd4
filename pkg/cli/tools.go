package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/roles"
)

// Kubectl runs the bundled kubectl; with no KUBECONFIG and no --kubeconfig it uses Outpost's
// admin kubeconfig (write-kubeconfig in config.yaml, else the default) when readable, as k3s
// does.
func Kubectl(args []string) error {
	if os.Getenv("KUBECONFIG") == "" && !hasFlag(args, "--kubeconfig") {
		kc, err := adminKubeconfig()
		if err != nil {
			return err
		}
		// Readable only to root: a user's own ~/.kube/config applies then, as without Outpost.
		if f, err := os.Open(kc); err == nil {
			f.Close()
			os.Setenv("KUBECONFIG", kc)
		}
	}
	os.Args = append([]string{"kubectl"}, args...)
	_, _ = logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args))
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err) // prints kubectl's own message and exits with its status
	}
	return nil
}

// configKeys reads keys from config.yaml (OUTPOST_CONFIG_FILE names another), for the tools
// whose arguments all go to the wrapped command. The default file may be unreadable (0600
// for root, a user running kubectl): then the defaults apply; a named one must be readable.
func configKeys(keys ...string) (map[string]string, error) {
	path := os.Getenv("OUTPOST_CONFIG_FILE")
	set, err := config.Lookup(firstOf(path, datadir.DefaultConfigFile), path != "", keys...)
	if err != nil && path == "" {
		return map[string]string{}, nil
	}
	return set, err
}

// adminKubeconfig is where the server wrote the admin kubeconfig.
func adminKubeconfig() (string, error) {
	set, err := configKeys("write-kubeconfig")
	if err != nil {
		return "", err
	}
	return firstOf(set["write-kubeconfig"], datadir.DefaultKubeconfig), nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || len(a) > len(name) && a[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

// Ctr execs the bundled ctr pointed at Outpost's containerd and the Kubernetes namespace. The
// data and runtime dirs come from OUTPOST_DATA_DIR / OUTPOST_RUNTIME_DIR, else config.yaml,
// else the defaults.
func Ctr(args []string) error {
	return execBundled("ctr", args, func(d datadir.Dirs) []string {
		return []string{"CONTAINERD_ADDRESS=" + d.ContainerdSocket(), "CONTAINERD_NAMESPACE=k8s.io"}
	})
}

// Crictl execs the bundled crictl against Outpost's containerd (CRI), found like Ctr does.
func Crictl(args []string) error {
	return execBundled("crictl", args, func(d datadir.Dirs) []string {
		return []string{"CONTAINER_RUNTIME_ENDPOINT=unix://" + d.ContainerdSocket(), "IMAGE_SERVICE_ENDPOINT=unix://" + d.ContainerdSocket()}
	})
}

// execBundled replaces this process with a bundled tool; the environment settings env gives
// apply only where the user has not set them.
func execBundled(name string, args []string, env func(datadir.Dirs) []string) error {
	set := map[string]string{}
	if os.Getenv("OUTPOST_DATA_DIR") == "" || os.Getenv("OUTPOST_RUNTIME_DIR") == "" {
		var err error
		if set, err = configKeys("data-dir", "runtime-dir"); err != nil {
			return err
		}
	}
	d := datadir.Dirs{Data: firstOf(os.Getenv("OUTPOST_DATA_DIR"), set["data-dir"], datadir.DefaultDataDir),
		Runtime: firstOf(os.Getenv("OUTPOST_RUNTIME_DIR"), set["runtime-dir"], datadir.DefaultRuntimeDir)}
	// The payload this program runs from first: it is the version the user called.
	bin := filepath.Join(d.BinDir(), name)
	if own, err := roles.PayloadBin(""); err == nil {
		bin = filepath.Join(own, name)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no bundled %s at %s: start 'outpost server' once (it unpacks %s), or set OUTPOST_DATA_DIR", name, bin, name)
	}
	all := os.Environ()
	for _, kv := range env(d) {
		k, _, _ := strings.Cut(kv, "=")
		if os.Getenv(k) == "" {
			all = append(all, kv)
		}
	}
	err := syscall.Exec(bin, append([]string{name}, args...), all)
	return errors.Join(fmt.Errorf("exec %s", bin), err)
}
