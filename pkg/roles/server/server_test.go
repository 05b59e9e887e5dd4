package server

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/control/etcdmember"
	"github.com/outpostk8s/outpost/pkg/control/helm"
	"github.com/outpostk8s/outpost/pkg/control/runtimeclass"
	"github.com/outpostk8s/outpost/pkg/control/sharedinformers"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/node/flannel"
	"github.com/outpostk8s/outpost/pkg/node/kubelet"
	"github.com/outpostk8s/outpost/pkg/node/kubeproxy"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

func env() config.Env {
	return config.Env{Hostname: func() (string, error) { return "s1", nil },
		DefaultIP: func() (net.IP, error) { return net.ParseIP("127.0.0.1"), nil },
		Host: hostcheck.Host{Root: "/nonexistent", Statfs: func(string, *unix.Statfs_t) error { return errors.New("no") },
			LookPath: func(string) (string, error) { return "", errors.New("no") }, Euid: func() int { return 0 }}}
}

// assemble completes a server config on a temp data dir, writes its credentials (no root
// needed) and returns its phases.
func assemble(t *testing.T, mod func(*config.ServerOptions)) (*Server, *component.Plan) {
	t.Helper()
	return assembleIn(t, "/payload/bin", mod)
}

// assembleIn assembles with the payload's binaries in binDir.
func assembleIn(t *testing.T, binDir string, mod func(*config.ServerOptions)) (*Server, *component.Plan) {
	t.Helper()
	o := defaultsFor(t)
	if mod != nil {
		mod(&o)
	}
	cfg, err := config.CompleteServer(o, env())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Cfg: cfg, Log: discard(), Out: logging.NewOut(io.Discard)}
	if cfg.Node != nil { // the check step's GPU detection, as a start runs it
		if s.GPU, err = node.CheckGPU(cfg.Node); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	plan, err := s.Plan(binDir)
	if err != nil {
		t.Fatal(err)
	}
	return s, plan
}

// layout is the plan as it runs, by stage.
func layout(t *testing.T, p *component.Plan) map[component.Stage][]string {
	t.Helper()
	runs, err := p.Stages()
	if err != nil {
		t.Fatal(err)
	}
	return component.Layout(runs)
}

// Stage names, short.
const (
	stData, stRuntime, stAPI, stCtl = component.StageDatastore, component.StageRuntime, component.StageAPI, component.StageControllers
	stKubelet, stNet                = component.StageKubelet, component.StageNetwork
)

// controllers are the controllers stage of a server on SQLite with everything on.
func controllers() []string {
	return []string{"policy-marker", "kube-scheduler", "kube-controller-manager", "informers-admin", "deploy", "server-certificates", "node-password-cleaner", "kubelet-ca-bundle", "metrics-server", "servicelb", "helm-controller", "gpu-runtimeclasses", "bootstrap-data", "token-sync", "etcd-snapshot", "node-password"}
}

// TestMain: called as the GPU helper, the test binary serves the mock DGX A100 on its stdio.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == gpuhelper.BinaryName {
		if err := gpuhelper.ServeStdio(mockgpu.DGXA100()); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// defaultsFor are the flags' defaults on a temp data dir.
func defaultsFor(t *testing.T) config.ServerOptions {
	dir := t.TempDir()
	return config.ServerOptions{
		NodeOptions: config.NodeOptions{DataDir: filepath.Join(dir, "data"), RuntimeDir: filepath.Join(dir, "run"),
			NodeIP: "127.0.0.1", NodePasswordFile: filepath.Join(dir, "pw"), KubeletArgs: []string{"max-pods=42"},
			GPU: config.GPUOptions{Mode: "off", MIGStrategy: "none", Replicas: 1, DriverRoot: "/", CDIDir: "/var/run/cdi"}},
		WriteKubeconfig: filepath.Join(dir, "admin.yaml"), WriteKubeconfigMode: "0600", BindAddress: "0.0.0.0",
		HTTPSListenPort: 6443, ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDomain: "cluster.local",
		KineCompactInterval: time.Minute, KineCompactBatch: 1000, KineCompactTimeout: 5 * time.Second, KinePollInterval: time.Second, FlannelBackend: "vxlan",
		SecretsProvider: "secretbox", Snapshots: config.SnapshotOptions{Cron: "0 */12 * * *", Retention: 5, Name: "etcd-snapshot"}}
}

func TestServerPhases(t *testing.T) {
	s, phases := assemble(t, nil)
	want := map[component.Stage][]string{
		stRuntime: {"sysctl", "containerd"},
		stData:    {"kine"},
		stAPI:     {"kube-apiserver", "images"},
		stCtl:     controllers(),
		stKubelet: {"kubelet", "kube-proxy", "service-cidr"},
		stNet:     {"flannel", "cni", "network-policy", "page-release"},
	}
	if got := layout(t, phases); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("stages\n got %v\nwant %v", got, want)
	}
	if got := phases.Order(); !slices.Equal(got, []component.Stage{stRuntime, stData, stAPI, stCtl, stKubelet, stNet}) {
		t.Errorf("stage order %v", got)
	}
	// containerd starts before the datastore without holding up the apiserver; the image
	// import beside the apiserver waits for containerd itself. One server alone elects no
	// leader: its controllers run in place.
	if _, e, _ := phases.Find("containerd"); !e.NotGating {
		t.Error("containerd gates the datastore's start")
	}
	if _, e, _ := phases.Find("images"); e.After == nil || e.After.Name() != "containerd" {
		t.Errorf("images: %+v, want it to wait for containerd", e)
	}
	for _, n := range []string{"deploy", "node-password-cleaner", "servicelb", "helm-controller", "gpu-runtimeclasses"} {
		if _, e, _ := phases.Find(n); !e.LeaderOnly {
			t.Errorf("%s is not leader-only", n)
		}
	}
	if phases.Elect != nil {
		t.Error("a server on SQLite elects a leader")
	}
	d := s.Cfg.Control.Dirs
	// Assembling writes nothing: each component writes its files in its own Init.
	for _, f := range []string{d.KubeletConfig(), d.KubeProxyConfig(), d.ContainerdConfig(), d.CNIConfDir()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written while assembling", f)
		}
	}
	// The server's node uses the server's PKI and the cluster it defines.
	k := component.Of[*kubelet.Kubelet](phases).Config()
	if k.TLSCertFile != filepath.Join(d.TLS(), "serving-kubelet.crt") || k.Kubeconfig != d.KubeletKubeconfig() ||
		k.ClusterDNS.String() != "10.43.0.10" || !slices.Contains(component.Of[*kubelet.Kubelet](phases).Argv(), "--max-pods=42") {
		t.Errorf("kubelet %+v", k)
	}
	if p := component.Of[*kubeproxy.KubeProxy](phases).Config(); p.ClusterCIDR != "10.42.0.0/16" {
		t.Errorf("kube-proxy %+v", p)
	}
	if f := component.Of[*flannel.Flannel](phases).Config(); f.Backend != "vxlan" || f.Dir != d.FlannelDir() {
		t.Errorf("flannel %+v", f)
	}
	if c := component.Of[*containerd.Containerd](phases).Config(); c.BinDir != "/payload/bin" || c.Socket != d.ContainerdSocket() {
		t.Errorf("containerd %+v", c)
	}
	// The Helm controller acts as system:outpost-helm, not as the admin.
	if r := component.Of[*helm.Controller](phases).Releaser; r.Kubeconfig != d.HelmKubeconfig() || r.APITLS.Cert != filepath.Join(d.TLS(), "client-helm.crt") {
		t.Errorf("helm controller's identity %+v", r)
	}
	if _, err := os.Stat(d.HelmKubeconfig()); err != nil {
		t.Error(err)
	}
}

// --disable-agent: the control plane only; no containerd, kubelet or node password. The
// RuntimeClass controller runs all the same: the GPUs are on the agents.
func TestServerWithoutNodePhases(t *testing.T) {
	_, phases := assemble(t, func(o *config.ServerOptions) { o.DisableAgent = true })
	want := map[component.Stage][]string{stData: {"kine"}, stAPI: {"kube-apiserver"}, stCtl: controllers()}
	if got := layout(t, phases); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("stages\n got %v\nwant %v", got, want)
	}
}

// --disable servicelb leaves LoadBalancer Services to another controller; --disable
// metrics-server runs no metrics API; --disable-helm-controller installs no charts;
// --etcd-disable-snapshots takes none (the bootstrap data is still stored).
func TestServerDisablePackaged(t *testing.T) {
	s, phases := assemble(t, func(o *config.ServerOptions) {
		o.DisableAgent, o.Disable, o.DisableHelm = true, []string{"servicelb", "metrics-server"}, true
		o.Snapshots.Disable = true
	})
	want := map[component.Stage][]string{stData: {"kine"}, stAPI: {"kube-apiserver"}, stCtl: {"policy-marker", "kube-scheduler", "kube-controller-manager", "informers-admin", "deploy", "server-certificates", "node-password-cleaner", "kubelet-ca-bundle", "gpu-runtimeclasses", "bootstrap-data", "token-sync", "node-password"}}
	if got := layout(t, phases); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("stages\n got %v\nwant %v", got, want)
	}
	// The Helm controller's identity loses cluster admin with it: its binding is removed.
	if !s.Cfg.Control.Disabled["helm-controller"] {
		t.Error("--disable-helm-controller keeps the controller's ClusterRoleBinding")
	}
}

// Secrets encryption adds the key (before the apiserver reads it) and the re-encryption; the
// GPU mock adds the GPU layer, and containerd learns the CDI dirs.
func TestServerOptionalPhases(t *testing.T) {
	dev := t.TempDir() // the mock's device nodes: plain files do, they are only looked for
	os.MkdirAll(filepath.Join(dev, "dev"), 0o755)
	for _, n := range []string{"nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidia4", "nvidia5", "nvidia6", "nvidia7"} {
		os.WriteFile(filepath.Join(dev, "dev", n), nil, 0o644)
	}
	drv := t.TempDir() // and the driver's library
	lib := filepath.Join(drv, "usr/lib/x86_64-linux-gnu")
	os.MkdirAll(lib, 0o755)
	os.WriteFile(filepath.Join(lib, "libnvidia-ml.so.550.54.15"), nil, 0o644)
	cdiDir := filepath.Join(t.TempDir(), "cdi")
	// The payload's GPU helper is this test binary, which serves the mock when called so
	// (TestMain): the agent detects through it as a node does.
	bin := t.TempDir()
	self, _ := os.Executable()
	if err := os.Symlink(self, filepath.Join(bin, gpuhelper.BinaryName)); err != nil {
		t.Fatal(err)
	}
	_, phases := assembleIn(t, bin, func(o *config.ServerOptions) {
		o.SecretsEncryption = true
		o.GPU.Mode, o.GPU.Mock, o.GPU.DevRoot, o.GPU.DriverRoot, o.GPU.CDIDir = "auto", "dgxa100", dev, drv, cdiDir
		o.FlannelBackend = "none"
	})
	if _, err := os.Stat(cdiDir); !errors.Is(err, os.ErrNotExist) {
		t.Error("CDI spec written while assembling")
	}
	names := layout(t, phases)
	// The CDI spec is written (its Init) before containerd, which reads it, starts; the key
	// before the apiserver reads it.
	if !slices.Equal(names[stRuntime], []string{"sysctl", "gpu-cdi", "containerd"}) || !slices.Equal(names[stData], []string{"kine", "secrets-encryption"}) ||
		!slices.Contains(names[stCtl], "secrets-reencrypt") {
		t.Errorf("encryption or GPU components missing: %v", names)
	}
	if last := names[stNet]; !slices.Equal(last, []string{"cni", "gpu", "network-policy", "page-release"}) {
		t.Errorf("network stage %v: want cni, gpu and network-policy, no flannel with backend none", last)
	}
	if a := component.Of[*layer.Layer](phases); a.Config().NodeName != "s1" || a.Node == nil || len(a.Node.GPUs) != 8 {
		t.Errorf("gpu %+v, node %+v", a.Config(), a.Node)
	}
	if c := component.Of[*containerd.Containerd](phases).Config(); !slices.Contains(c.CDISpecDirs, cdiDir) {
		t.Errorf("containerd CDI dirs %v", c.CDISpecDirs)
	}
}

// TestEtcdServerPhases: --cluster-init puts embedded etcd where kine was, makes the etcd
// certificates from an etcd CA that the bootstrap data carries, serves the server-join paths,
// removes deleted Nodes' members, and runs Outpost's controllers under the Lease.
func TestEtcdServerPhases(t *testing.T) {
	s, phases := assemble(t, func(o *config.ServerOptions) { o.ClusterInit = true })
	stages := layout(t, phases)
	names := map[string]bool{}
	for _, ns := range stages {
		for _, n := range ns {
			names[n] = true
		}
	}
	if !slices.Equal(stages[stData], []string{"etcd"}) {
		t.Errorf("datastore stage %v", stages[stData])
	}
	for _, want := range []string{"etcd-member-remover", "leader-elected", "etcd-snapshot"} {
		if !names[want] {
			t.Errorf("no %s in %v", want, names)
		}
	}
	// The name claim waits for RBAC that deploy applies under the Lease: it starts after the
	// elected group (a first server on an empty shared datastore waited for itself otherwise).
	order := stages[stCtl]
	if slices.Contains(order, "deploy") || slices.Contains(order, "servicelb") {
		t.Errorf("leader-only controllers outside the elected group: %v", order)
	}
	if i, j := slices.Index(order, "leader-elected"), slices.Index(order, "node-password"); i < 0 || j < i {
		t.Errorf("node-password before the leader-elected group: %v", order)
	}
	// The admin's shared informers start before their users (the elected group, with the
	// RuntimeClass controller, and the member remover) and so stop after them; both users
	// hold that one factory, so the process holds one Node cache as the admin.
	own := slices.Index(order, "informers-admin")
	for _, user := range []string{"leader-elected", "etcd-member-remover"} {
		if i := slices.Index(order, user); own < 0 || i < own {
			t.Errorf("%s before informers-admin: %v", user, order)
		}
	}
	shared := component.Of[*sharedinformers.Factory](phases)
	if rm, rc := component.Of[*etcdmember.Remover](phases), component.Of[*runtimeclass.Controller](phases); shared == nil || rm.Informers != shared || rc.Informers != shared {
		t.Errorf("the admin's users do not share informers-admin's factory: %p %p %p", shared, rm.Informers, rc.Informers)
	}
	tls := s.Cfg.Control.Dirs.EtcdTLS()
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "peer.crt", "client.crt"} {
		if _, err := os.Stat(filepath.Join(tls, f)); err != nil {
			t.Error(err)
		}
	}
	d, err := bootstrapCollect(s)
	if err != nil || d.Files["tls/etcd/ca.key"] == nil {
		t.Errorf("bootstrap data lacks the etcd CA: %v", err)
	}
}

func bootstrapCollect(s *Server) (*bootstrap.Data, error) {
	return bootstrap.Collect(s.Cfg.Control.Dirs.ServerDir())
}
