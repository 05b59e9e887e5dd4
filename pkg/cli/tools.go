package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/outpostk8s/outpost/pkg/datadir"
)

// Kubectl runs the bundled kubectl; with no KUBECONFIG and no --kubeconfig it uses Outpost's
// admin kubeconfig when readable, as k3s does.
func Kubectl(args []string) error {
	if os.Getenv("KUBECONFIG") == "" && !hasFlag(args, "--kubeconfig") {
		if f, err := os.Open(datadir.DefaultKubeconfig); err == nil {
			f.Close()
			os.Setenv("KUBECONFIG", datadir.DefaultKubeconfig)
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

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || len(a) > len(name) && a[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

// Ctr execs the bundled ctr pointed at Outpost's containerd and the Kubernetes namespace.
func Ctr(args []string) error {
	dataDir := os.Getenv("OUTPOST_DATA_DIR")
	if dataDir == "" {
		dataDir = datadir.DefaultDataDir
	}
	runDir := os.Getenv("OUTPOST_RUNTIME_DIR")
	if runDir == "" {
		runDir = datadir.DefaultRuntimeDir
	}
	d := datadir.Dirs{Data: dataDir, Runtime: runDir}
	bin := filepath.Join(d.BinDir(), "ctr")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no bundled ctr at %s: start 'outpost server' once (it unpacks ctr), or set OUTPOST_DATA_DIR", bin)
	}
	env := os.Environ()
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		env = append(env, "CONTAINERD_ADDRESS="+d.ContainerdSocket())
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		env = append(env, "CONTAINERD_NAMESPACE=k8s.io")
	}
	err := syscall.Exec(bin, append([]string{"ctr"}, args...), env)
	return errors.Join(fmt.Errorf("exec %s", bin), err)
}
