package agent

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/node/flannel"
	"github.com/outpostk8s/outpost/pkg/node/kubelet"
	"github.com/outpostk8s/outpost/pkg/node/kubeproxy"
	"github.com/outpostk8s/outpost/pkg/node/lb"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

// storedJoin writes what an earlier join left in dir: credentials and the cluster's settings
// (deliberately not the defaults), and reads it back as a join result.
func storedJoin(t *testing.T, dir string) *join.Result {
	t.Helper()
	srv := t.TempDir()
	b, err := pki.EnsureCluster(pki.ClusterSpec{Dir: srv, NodeName: "a1", NodeIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o700)
	for _, f := range []string{pki.ServerCA + ".crt", pki.ClientCA + ".crt", pki.Kubelet + ".crt", pki.Kubelet + ".key",
		pki.KubeletServing + ".crt", pki.KubeletServing + ".key", pki.KubeProxy + ".crt", pki.KubeProxy + ".key"} {
		raw, err := os.ReadFile(b.Path(f, ""))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), raw, 0o600)
	}
	_, pods, _ := net.ParseCIDR("10.52.0.0/16")
	_, svcs, _ := net.ParseCIDR("10.53.0.0/16")
	st, _ := json.Marshal(map[string]any{"server": "https://10.9.9.9:6443", "settings": cluster.Settings{ClusterCIDR: pods,
		ServiceCIDR: svcs, ClusterDNS: net.ParseIP("10.53.0.10"), ClusterDomain: "edge.local", FlannelBackend: "host-gw", NetworkPolicy: true}})
	os.WriteFile(filepath.Join(dir, "join.json"), st, 0o600)
	res, err := join.Stored(dir)
	if err != nil {
		t.Fatal(err)
	}
	res.Node = join.Node{Name: "a1", IP: "127.0.0.1", Password: strings.Repeat("p", 32)}
	return res
}

// An agent runs the node alone, behind its load balancer, on the join's credentials and the
// cluster settings the server sent.
func TestAgentPhases(t *testing.T) {
	dir := t.TempDir()
	env := config.Env{Hostname: func() (string, error) { return "a1", nil },
		DefaultIP: func() (net.IP, error) { return net.ParseIP("127.0.0.1"), nil },
		Host: hostcheck.Host{Root: "/nonexistent", Statfs: func(string, *unix.Statfs_t) error { return errors.New("no") },
			LookPath: func(string) (string, error) { return "", errors.New("no") }, Euid: func() int { return 0 }}}
	cfg, err := config.CompleteAgent(config.AgentOptions{NodeOptions: config.NodeOptions{DataDir: filepath.Join(dir, "data"),
		RuntimeDir: filepath.Join(dir, "run"), NodeIP: "127.0.0.1", NodePasswordFile: filepath.Join(dir, "pw"),
		GPU: config.GPUOptions{Mode: "off", MIGStrategy: "none", Replicas: 1}},
		Servers: []string{"https://10.0.0.1:6443", "https://10.9.9.9:6443"},
		Token:   "OP10" + strings.Repeat("0", 64) + "::abcdef.0123456789abcdef"}, env)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Node.Dirs
	res := storedJoin(t, d.AgentTLS())
	cfg.Node.Cluster = res.Settings
	a := &Agent{Cfg: cfg, Joined: res, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: logging.NewOut(io.Discard)}
	if err := a.Prepare(); err != nil {
		t.Fatal(err)
	}
	phases, err := a.Plan("/payload/bin")
	if err != nil {
		t.Fatal(err)
	}
	want := map[component.Stage][]string{
		component.StageRuntime: {"node-certificates", "load-balancer", "sysctl", "containerd"},
		component.StageImages:  {"images"}, component.StageKubelet: {"kubelet", "kube-proxy", "service-cidr"},
		component.StageNetwork: {"flannel", "cni", "network-policy", "server-list", "page-release"}}
	got := map[component.Stage][]string{}
	for _, st := range phases.Order() {
		got[st] = phases.Names(st)
	}
	if !maps.EqualFunc(got, want, slices.Equal) || !slices.Equal(phases.Order(), []component.Stage{component.StageRuntime, component.StageImages, component.StageKubelet, component.StageNetwork}) {
		t.Fatalf("stages\n got %v %v\nwant %v", phases.Order(), got, want)
	}
	// The server's --disable-network-policy reaches the agent in its settings.
	a.Cfg.Node.Cluster.NetworkPolicy = false
	off, err := a.Plan("/payload/bin")
	if err != nil {
		t.Fatal(err)
	}
	if names := off.Names(component.StageNetwork); !slices.Contains(names, "network-policy-cleanup") || slices.Contains(names, "network-policy") {
		t.Errorf("policies off: network stage %v", names)
	}
	k := component.Of[*kubelet.Kubelet](phases).Config()
	if k.TLSCertFile != filepath.Join(d.AgentTLS(), pki.KubeletServing+".crt") || k.ClientCAFile != filepath.Join(d.AgentTLS(), pki.ClientCA+".crt") ||
		k.ClusterDNS.String() != "10.53.0.10" || k.ClusterDomain != "edge.local" {
		t.Errorf("kubelet %+v", k)
	}
	if p := component.Of[*kubeproxy.KubeProxy](phases).Config(); p.ClusterCIDR != "10.52.0.0/16" {
		t.Errorf("kube-proxy cluster CIDR %s, want the join's", p.ClusterCIDR)
	}
	if f := component.Of[*flannel.Flannel](phases).Config(); f.Backend != "host-gw" {
		t.Errorf("flannel backend %s, want the join's", f.Backend)
	}
	// The load balancer tries the server of the last join first.
	if b := component.Of[*lb.LB](phases); b.Listen != node.LBAddress || !slices.Equal(b.Servers, []string{"10.9.9.9:6443", "10.0.0.1:6443"}) {
		t.Errorf("load balancer %s %v", b.Listen, b.Servers)
	}
	kc, _ := os.ReadFile(d.KubeletKubeconfig())
	if !strings.Contains(string(kc), "server: https://"+node.LBAddress) || !strings.Contains(string(kc), "client-certificate: "+filepath.Join(d.AgentTLS(), pki.Kubelet+".crt")) {
		t.Errorf("kubelet kubeconfig:\n%s", kc)
	}
}
