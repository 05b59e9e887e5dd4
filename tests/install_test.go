package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

func distDir(t *testing.T) string {
	harness.Bin(t)
	d := os.Getenv("OUTPOST_DIST")
	if d == "" {
		t.Skip("OUTPOST_DIST is not set: run `make integration`")
	}
	return d
}

func sha(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mode(t *testing.T, p string) os.FileMode {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// copyDist makes a modifiable copy of dist/: mutate gets the copy's path.
func copyDist(t *testing.T, src string, mutate func(dir string)) string {
	dir := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dir, e.Name()))
	}
	if mutate != nil {
		mutate(dir)
	}
	return dir
}

func serve(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// curlInstall is the documented one-liner, inside the throwaway root.
func curlInstall(r *harness.Root, url string, env ...string) (string, error) {
	return r.Run("curl -sfL "+url+"/install.sh | sh -", append([]string{"INSTALL_OUTPOST_ARTIFACT_URL=" + url}, env...)...)
}

// startUnit runs the unit's ExecStart by hand with its environment file, as systemd would.
func startUnit(t *testing.T, r *harness.Root, unit string) *exec.Cmd {
	t.Helper()
	b, err := os.ReadFile(r.Path(unit))
	if err != nil {
		t.Fatal(err)
	}
	var execStart, envFile string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = v
		}
		if v, ok := strings.CutPrefix(l, "EnvironmentFile=-"); ok {
			envFile = v
		}
	}
	if execStart == "" {
		t.Fatal("no ExecStart in " + unit)
	}
	log, _ := os.Create(filepath.Join(r.Base, "server.log"))
	cmd := r.Command(fmt.Sprintf("set -a; [ -f %s ] && . %s; set +a; exec %s", envFile, envFile, execStart))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopUnit(cmd) })
	return cmd
}

func stopUnit(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// kubectl against the server running in the root, from the host, with its kubeconfig.
func rootKubectl(r *harness.Root, args ...string) (string, error) {
	out, err := exec.Command(os.Getenv("OUTPOST_BIN"), append([]string{"kubectl", "--kubeconfig", r.Path("/etc/outpost/outpost.yaml")}, args...)...).CombinedOutput()
	return string(out), err
}

func waitNodeReady(t *testing.T, r *harness.Root, name string) {
	t.Helper()
	harness.Eventually(t, 3*time.Minute, "node "+name+" Ready", func() error {
		out, err := rootKubectl(r, "get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
		if err != nil || out != "True" {
			log, _ := os.ReadFile(filepath.Join(r.Base, "server.log"))
			return fmt.Errorf("%q %v\n%s", out, err, tailLines(string(log), 5))
		}
		return nil
	})
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func TestInstallServerUpgradeUninstall(t *testing.T) {
	dist := distDir(t)
	arch := "amd64"
	url := serve(t, dist)
	r := harness.NewRoot(t)
	// Node dirs that earlier tests' pods or an interrupted run left on this host would make the
	// installer think they were the user's; the root starts without them.
	// (The root's /run, and so /var/run/cdi, is a fresh tmpfs already.)
	r.Hide("/var/lib/kubelet", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/etc/outpost-node")
	// A file the user had before installing: uninstall must keep it.
	os.MkdirAll(r.Path("/etc/outpost"), 0o755)
	os.WriteFile(r.Path("/etc/outpost/config.yaml"), []byte("kubelet-arg: [max-pods=90]\n"), 0o644)

	out, err := curlInstall(r, url, "INSTALL_OUTPOST_SKIP_START=true", "OUTPOST_NODE_NAME=installed-node")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	bin := r.Path("/usr/local/bin/outpost")
	if sha(t, bin) != sha(t, filepath.Join(dist, "outpost-"+arch)) || mode(t, bin) != 0o755 {
		t.Errorf("binary not installed as downloaded (mode %v)", mode(t, bin))
	}
	// Links only where the command is not already installed (this host may have a kubectl).
	for _, l := range []string{"kubectl", "ctr", "crictl"} {
		dest, err := os.Readlink(r.Path("/usr/local/bin/" + l))
		_, hostHas := exec.LookPath(l)
		switch {
		case hostHas == nil && err == nil:
			t.Errorf("%s link made although %s exists", l, l)
		case hostHas != nil && (err != nil || dest != "/usr/local/bin/outpost"):
			t.Errorf("%s link: %q %v", l, dest, err)
		}
	}
	unit := "/etc/systemd/system/outpost.service"
	ub, _ := os.ReadFile(r.Path(unit))
	for _, want := range []string{"ExecStart=/usr/local/bin/outpost server", "KillMode=process", "Delegate=yes", "Restart=on-failure",
		"EnvironmentFile=-/etc/systemd/system/outpost.service.env"} {
		if !strings.Contains(string(ub), want) {
			t.Errorf("unit lacks %q:\n%s", want, ub)
		}
	}
	env := r.Path("/etc/systemd/system/outpost.service.env")
	if eb, _ := os.ReadFile(env); !strings.Contains(string(eb), "OUTPOST_NODE_NAME=installed-node") || mode(t, env) != 0o600 {
		t.Errorf("env file (mode %v):\n%s", mode(t, env), eb)
	}
	if out, err := r.Run("systemd-analyze verify " + unit); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// ExecStart by hand: the node comes up under the name from the environment file.
	r.Bind("/var/lib/outpost")
	srv := startUnit(t, r, unit)
	waitNodeReady(t, r, "installed-node")
	if out, err := rootKubectl(r, "create", "configmap", "before-upgrade", "--from-literal=k=v"); err != nil {
		t.Fatal(out, err)
	}

	// Upgrade: a newer build is installed over the old one and the cluster's data stays.
	newer := copyDist(t, dist, func(d string) {
		f, _ := os.OpenFile(filepath.Join(d, "outpost-"+arch), os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte("newer build"))
		f.Close()
		exec.Command("sh", "-c", "cd "+d+" && sha256sum outpost-"+arch+" > sha256sum-"+arch+".txt").Run()
	})
	stopUnit(srv)
	url2 := serve(t, newer)
	if out, err := curlInstall(r, url2, "INSTALL_OUTPOST_SKIP_START=true", "OUTPOST_NODE_NAME=installed-node"); err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if sha(t, bin) != sha(t, filepath.Join(newer, "outpost-"+arch)) {
		t.Error("upgrade did not replace the binary")
	}
	startUnit(t, r, unit)
	waitNodeReady(t, r, "installed-node")
	if out, _ := rootKubectl(r, "get", "configmap", "before-upgrade", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("configmap after upgrade: %q", out)
	}

	// Uninstall: nothing of Outpost's left, nothing else removed.
	if out, err := r.Run("/usr/local/bin/outpost-uninstall.sh"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	if left := r.Leftovers(); len(left) > 0 {
		t.Errorf("after uninstall: %v", left)
	}
	// The node password stays, as k3s keeps /etc/rancher/node: a re-installed machine keeps
	// its node name (README: More machines).
	var created []string
	for _, c := range r.Created() {
		switch c {
		case "file /etc/outpost/config.yaml", "dir /etc/outpost", "dir /var/lib/outpost",
			"dir /etc/outpost-node", "file /etc/outpost-node/password":
		default:
			created = append(created, c)
		}
	}
	if len(created) > 0 {
		t.Errorf("uninstall left or removed: %v", created)
	}
	if _, err := os.Stat(r.Path("/etc/outpost/config.yaml")); err != nil {
		t.Error("uninstall removed the user's config.yaml")
	}
	if ents, _ := os.ReadDir(filepath.Join(r.Scratch, "var_lib_outpost")); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("data dir not emptied: %v", names)
	}
}

func TestInstallRefusals(t *testing.T) {
	dist := distDir(t)
	for name, mutate := range map[string]func(string){
		"TamperedBinary": func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, "outpost-amd64"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("x"))
			f.Close()
		},
		"TamperedChecksum": func(d string) {
			os.WriteFile(filepath.Join(d, "sha256sum-amd64.txt"), []byte(strings.Repeat("0", 64)+"  outpost-amd64\n"), 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := harness.NewRoot(t)
			out, err := curlInstall(r, serve(t, copyDist(t, dist, mutate)))
			if err == nil || !strings.Contains(out, "checksum mismatch") || !strings.Contains(out, "nothing was installed") {
				t.Errorf("err %v, output:\n%s", err, out)
			}
			if c := r.Created(); len(c) > 0 {
				t.Errorf("a refused install wrote: %v", c)
			}
		})
	}
	t.Run("AgentWithoutTokenBusyboxSh", func(t *testing.T) {
		r := harness.NewRoot(t)
		url := serve(t, dist)
		out, err := r.Run("curl -sfL "+url+"/install.sh | busybox sh -", "INSTALL_OUTPOST_ARTIFACT_URL="+url, "OUTPOST_URL=https://10.0.0.1:6443")
		if err == nil || !strings.Contains(out, "set OUTPOST_TOKEN") {
			t.Errorf("err %v, output:\n%s", err, out)
		}
	})
	t.Run("ShellcheckClean", func(t *testing.T) {
		out, err := exec.Command("shellcheck", "-s", "sh", filepath.Join(dist, "install.sh")).CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	})
	t.Run("AgentWithoutToken", func(t *testing.T) {
		r := harness.NewRoot(t)
		out, err := curlInstall(r, serve(t, dist), "OUTPOST_URL=https://10.0.0.1:6443")
		if err == nil || !strings.Contains(out, "set OUTPOST_TOKEN") {
			t.Errorf("err %v, output:\n%s", err, out)
		}
		if c := r.Created(); len(c) > 0 {
			t.Errorf("a refused install wrote: %v", c)
		}
	})
}

// TestInstallVersionAndChannel: INSTALL_OUTPOST_VERSION reads ARTIFACT_URL/VERSION/, and
// INSTALL_OUTPOST_CHANNEL resolves the version from ARTIFACT_URL/channels/CHANNEL.
func TestInstallVersionAndChannel(t *testing.T) {
	dist := distDir(t)
	site := t.TempDir()
	os.MkdirAll(filepath.Join(site, "channels"), 0o755)
	os.WriteFile(filepath.Join(site, "channels", "stable"), []byte("v9.9.9\n"), 0o644)
	os.Symlink(dist, filepath.Join(site, "v9.9.9"))
	url := serve(t, site)
	for _, env := range []string{"INSTALL_OUTPOST_VERSION=v9.9.9", "INSTALL_OUTPOST_CHANNEL=stable"} {
		r := harness.NewRoot(t)
		out, err := curlInstall(r, url+"/v9.9.9", "INSTALL_OUTPOST_SKIP_START=true")
		if err != nil {
			t.Fatalf("install script: %v %s", err, out)
		}
		out, err = r.Run("curl -sfL "+url+"/v9.9.9/install.sh | sh -", "INSTALL_OUTPOST_ARTIFACT_URL="+url, env,
			"INSTALL_OUTPOST_SKIP_START=true", "INSTALL_OUTPOST_EXEC=--debug --tls-san edge.example")
		if err != nil || sha(t, r.Path("/usr/local/bin/outpost")) != sha(t, filepath.Join(dist, "outpost-amd64")) {
			t.Errorf("%s: %v\n%s", env, err, out)
		}
		if u, _ := os.ReadFile(r.Path("/etc/systemd/system/outpost.service")); !strings.Contains(string(u), "ExecStart=/usr/local/bin/outpost server --debug --tls-san edge.example") {
			t.Errorf("INSTALL_OUTPOST_EXEC not in ExecStart:\n%s", u)
		}
	}
}

func TestInstallAirGapped(t *testing.T) {
	dist := distDir(t)
	r := harness.NewRoot(t)
	// By hand, as at a site with no network: binary, images archive and the script.
	os.MkdirAll(r.Path("/usr/local/bin"), 0o755)
	copyFile(t, filepath.Join(dist, "outpost-amd64"), r.Path("/usr/local/bin/outpost"))
	os.Chmod(r.Path("/usr/local/bin/outpost"), 0o755)
	copyFile(t, filepath.Join(dist, "install.sh"), r.Path("/root/install.sh"))
	if out, err := r.Run("INSTALL_OUTPOST_SKIP_DOWNLOAD=true INSTALL_OUTPOST_SKIP_START=true sh /root/install.sh"); err != nil {
		t.Fatalf("air-gapped install: %v\n%s", err, out)
	}
	r.Bind("/var/lib/outpost")
	os.MkdirAll(r.Path("/var/lib/outpost/agent/images"), 0o755)
	copyFile(t, filepath.Join(dist, "outpost-airgap-images-amd64.tar.zst"), r.Path("/var/lib/outpost/agent/images/outpost-airgap-images-amd64.tar.zst"))
	startUnit(t, r, "/etc/systemd/system/outpost.service")
	host, _ := os.Hostname()
	waitNodeReady(t, r, strings.ToLower(host))
	harness.Eventually(t, 2*time.Minute, "coredns Running", func() error {
		out, err := rootKubectl(r, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[*].status.phase}")
		if err != nil || out != "Running" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	log, _ := os.ReadFile(filepath.Join(r.Base, "server.log"))
	if !strings.Contains(string(log), "imported images") || !strings.Contains(string(log), "docker.io/outpostk8s/coredns") {
		t.Errorf("no import of the air-gap archive in the log")
	}
	r.Run("/usr/local/bin/outpost-uninstall.sh")
}
