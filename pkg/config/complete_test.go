package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

func testEnv() Env {
	return Env{
		Hostname:  func() (string, error) { return "Edge-1", nil },
		DefaultIP: func() (net.IP, error) { return net.ParseIP("192.0.2.7"), nil },
		Host: hostcheck.Host{Root: "/nonexistent", Statfs: func(string, *unix.Statfs_t) error { return errors.New("no") },
			LookPath: func(string) (string, error) { return "", errors.New("no") }, Euid: func() int { return 0 }},
	}
}

func nodeDefaults() NodeOptions {
	return NodeOptions{DataDir: "/var/lib/outpost", RuntimeDir: "/run/outpost",
		GPU: GPUOptions{Mode: "auto", MIGStrategy: "none", Replicas: 1, DriverRoot: "/", MetricsPort: 9401}}
}

func defaults() ServerOptions {
	return ServerOptions{NodeOptions: nodeDefaults(), WriteKubeconfig: "/etc/outpost/outpost.yaml",
		WriteKubeconfigMode: "0600", BindAddress: "0.0.0.0", HTTPSListenPort: 6443, ClusterCIDR: "10.42.0.0/16",
		ServiceCIDR: "10.43.0.0/16", ClusterDomain: "cluster.local", KineCompactInterval: time.Minute, FlannelBackend: "vxlan",
		KineCompactBatch: 1000, KineCompactTimeout: 5 * time.Second, KinePollInterval: time.Second,
		Snapshots: SnapshotOptions{Cron: "0 */12 * * *", Retention: 5, Name: "etcd-snapshot"}}
}

func TestSnapshotAndRestoreOptions(t *testing.T) {
	o := defaults()
	s, err := CompleteServer(o, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	sn := s.Control.Snapshots
	if sn.Schedule != "0 */12 * * *" || sn.Retention != 5 || sn.Dir != "/var/lib/outpost/server/db/snapshots" || s.Control.RestoreFrom != "" {
		t.Errorf("defaults %+v", sn)
	}
	o.DatastoreEndpoint = "postgres://u:p@db/k"
	if s, err := CompleteServer(o, testEnv()); err != nil || s.Control.Snapshots.Schedule != "" {
		t.Errorf("an external datastore keeps its own backups: %+v %v", s, err)
	}
	for want, mut := range map[string]func(*ServerOptions){
		"--etcd-snapshot-schedule-cron": func(o *ServerOptions) { o.Snapshots.Cron = "every noon" },
		"--etcd-snapshot-retention":     func(o *ServerOptions) { o.Snapshots.Retention = 0 },
		"--etcd-snapshot-name":          func(o *ServerOptions) { o.Snapshots.Name = "a/b" },
		"needs --cluster-reset":         func(o *ServerOptions) { o.ClusterResetRestorePath = "/x" },
		"--cluster-reset with --datastore-endpoint": func(o *ServerOptions) {
			o.ClusterReset, o.ClusterResetRestorePath, o.DatastoreEndpoint = true, "/x", "postgres://db/k"
		},
		"with --cluster-reset-restore-path": func(o *ServerOptions) { o.ClusterReset = true },
	} {
		o := defaults()
		mut(&o)
		if _, err := CompleteServer(o, testEnv()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	o = defaults()
	o.ClusterReset, o.ClusterResetRestorePath = true, "snap"
	if s, err := CompleteServer(o, testEnv()); err != nil || !filepath.IsAbs(s.Control.RestoreFrom) {
		t.Errorf("restore path: %+v %v", s, err)
	}
}

func TestEtcdOptions(t *testing.T) {
	o := defaults()
	o.ClusterInit = true
	if s, err := CompleteServer(o, testEnv()); err != nil || !s.Control.Etcd || s.Control.Snapshots.Schedule == "" {
		t.Errorf("--cluster-init: %+v %v", s, err)
	}
	o = defaults()
	o.JoinServer, o.Token = "https://10.0.0.1:6443", "abcdef.0123456789abcdef"
	if s, err := CompleteServer(o, testEnv()); err != nil || !s.Control.Etcd || s.Control.JoinServer != o.JoinServer {
		t.Errorf("--server: %+v %v", s, err)
	}
	// A server whose etcd ran before stays on etcd without the flags.
	env := testEnv()
	env.Exists = func(p string) bool { return p == "/var/lib/outpost/server/db/etcd/member" }
	if s, err := CompleteServer(defaults(), env); err != nil || !s.Control.Etcd {
		t.Errorf("existing member: %+v %v", s, err)
	}
	if s, err := CompleteServer(defaults(), testEnv()); err != nil || s.Control.Etcd {
		t.Errorf("default is SQLite: %+v %v", s, err)
	}
	for want, mut := range map[string]func(*ServerOptions){
		"--cluster-init runs embedded etcd, --datastore-endpoint": func(o *ServerOptions) { o.ClusterInit, o.DatastoreEndpoint = true, "postgres://db/k" },
		"--server runs embedded etcd, --datastore-endpoint": func(o *ServerOptions) {
			o.JoinServer, o.Token, o.DatastoreEndpoint = "https://10.0.0.1:6443", "abcdef.0123456789abcdef", "postgres://db/k"
		},
		"give one of them":                     func(o *ServerOptions) { o.ClusterInit, o.JoinServer = true, "https://10.0.0.1:6443" },
		"--server needs the cluster's --token": func(o *ServerOptions) { o.JoinServer = "https://10.0.0.1:6443" },
		"want https://HOST:PORT":               func(o *ServerOptions) { o.JoinServer, o.Token = "10.0.0.1:6443", "abcdef.0123456789abcdef" },
		"--cluster-reset with --server": func(o *ServerOptions) {
			o.JoinServer, o.Token, o.ClusterReset, o.ClusterResetRestorePath = "https://10.0.0.1:6443", "abcdef.0123456789abcdef", true, "/x"
		},
	} {
		o := defaults()
		mut(&o)
		if _, err := CompleteServer(o, testEnv()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	o = defaults()
	o.ClusterInit, o.ClusterReset = true, true
	if s, err := CompleteServer(o, testEnv()); err != nil || !s.Control.ResetMembers || s.Control.RestoreFrom != "" {
		t.Errorf("--cluster-reset alone on etcd: %+v %v", s, err)
	}
	o = defaults()
	o.DatastoreEndpoint = "postgres://db/k"
	if _, err := CompleteServer(o, env); err == nil || !strings.Contains(err.Error(), "embedded etcd") {
		t.Errorf("external datastore on an etcd server: %v", err)
	}
}

func TestCompleteGPUOptions(t *testing.T) {
	badSharing := filepath.Join(t.TempDir(), "sharing.yaml")
	if err := os.WriteFile(badSharing, []byte("version: v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mut  func(*GPUOptions)
		want string
	}{
		{func(g *GPUOptions) { g.Mode = "on" }, "--gpu-mode"},
		{func(g *GPUOptions) { g.MIGStrategy = "all" }, "--gpu-mig-strategy"},
		{func(g *GPUOptions) { g.Replicas = 0 }, "--gpu-time-slicing-replicas"},
		{func(g *GPUOptions) { g.Mock = "dgx-z" }, "--gpu-mock"},
		{func(g *GPUOptions) { g.SharingConfig = "/nonexistent/sharing.yaml" }, "--gpu-sharing-config: GPU sharing config: stat /nonexistent"},
		{func(g *GPUOptions) { g.SharingConfig = badSharing }, "--gpu-sharing-config: GPU sharing config " + badSharing + `: version "v2": only v1 is known`},
	} {
		o := defaults()
		tc.mut(&o.GPU)
		if _, err := CompleteServer(o, testEnv()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %s", err, tc.want)
		}
	}
}

func TestCompleteDerives(t *testing.T) {
	o := defaults()
	o.TLSSANs = []string{"edge.example", "198.51.100.9"}
	o.Debug = true
	srv, err := CompleteServer(o, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	c, n := srv.Control, srv.Node
	if n.NodeName != "edge-1" || n.NodeIP.String() != "192.0.2.7" || c.NodeName != n.NodeName || c.OwnNode != "edge-1" {
		t.Errorf("node %s %s", n.NodeName, n.NodeIP)
	}
	if c.APIServiceIP.String() != "10.43.0.1" || c.Cluster.ClusterDNS.String() != "10.43.0.10" {
		t.Errorf("service ips %s %s", c.APIServiceIP, c.Cluster.ClusterDNS)
	}
	// The node runs in the cluster the control plane defines.
	if n.Cluster.ClusterCIDR.String() != "10.42.0.0/16" || n.Cluster.ClusterDomain != "cluster.local" || n.Cluster.FlannelBackend != "vxlan" {
		t.Errorf("node's cluster settings %+v", n.Cluster)
	}
	if !n.Cluster.NetworkPolicy {
		t.Error("NetworkPolicy is on by default")
	}
	o.DisableNetPol = true
	if off, err := CompleteServer(o, testEnv()); err != nil || off.Node.Cluster.NetworkPolicy || !off.Control.Disabled["network-policy"] {
		t.Errorf("--disable-network-policy: %v", err)
	}
	if c.Verbosity != 4 || n.Verbosity != 4 {
		t.Errorf("debug should raise verbosity to 4, got %d", c.Verbosity)
	}
	if c.KubeconfigMode != 0o600 {
		t.Errorf("mode %o", c.KubeconfigMode)
	}
	dns := strings.Join(c.SANs.DNS, ",")
	for _, want := range []string{"kubernetes.default.svc.cluster.local", "edge-1", "edge.example"} {
		if !strings.Contains(dns, want) {
			t.Errorf("SAN %s missing from %s", want, dns)
		}
	}
	var ips []string
	for _, ip := range c.SANs.IPs {
		ips = append(ips, ip.String())
	}
	for _, want := range []string{"127.0.0.1", "192.0.2.7", "10.43.0.1", "198.51.100.9"} {
		if !strings.Contains(strings.Join(ips, ","), want) {
			t.Errorf("SAN IP %s missing from %v", want, ips)
		}
	}
}

func TestCompleteRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*ServerOptions)
		want string
	}{
		{"bad port", func(o *ServerOptions) { o.HTTPSListenPort = 70000 }, "--https-listen-port"},
		{"bad cidr", func(o *ServerOptions) { o.ClusterCIDR = "10.42.0.0" }, "--cluster-cidr"},
		{"overlap", func(o *ServerOptions) { o.ServiceCIDR = "10.42.0.0/24" }, "overlap"},
		{"dns outside", func(o *ServerOptions) { o.ClusterDNS = "10.99.0.10" }, "--cluster-dns"},
		{"disable unknown", func(o *ServerOptions) { o.Disable = []string{"traefik"} }, `--disable "traefik"`},
		{"bad mode", func(o *ServerOptions) { o.WriteKubeconfigMode = "rw" }, "--write-kubeconfig-mode"},
		{"bad node ip", func(o *ServerOptions) { o.NodeIP = "1.2.3" }, "--node-ip"},
		{"bad flannel backend", func(o *ServerOptions) { o.FlannelBackend = "wireguard" }, "--flannel-backend"},
		{"bad node name", func(o *ServerOptions) { o.NodeName = "a_b" }, "node name"},
		{"bad dsn", func(o *ServerOptions) { o.DatastoreEndpoint = "redis://x" }, "--datastore-endpoint"},
		{"empty data dir", func(o *ServerOptions) { o.DataDir = " " }, "--data-dir"},
		{"bad cluster domain", func(o *ServerOptions) { o.ClusterDomain = "Cluster_Local" }, `--cluster-domain "Cluster_Local"`},
		{"empty cluster domain", func(o *ServerOptions) { o.ClusterDomain = "" }, "such as cluster.local"},
		{"cluster domain with trailing dot", func(o *ServerOptions) { o.ClusterDomain = "cluster.local." }, "--cluster-domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaults()
			tt.mod(&o)
			_, err := CompleteServer(o, testEnv())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// --disable-agent: a control plane only, whose name is still held back from joins (a join
// under it, later deleted, would take the server's etcd member with it).
func TestCompleteServerWithoutNode(t *testing.T) {
	o := defaults()
	o.DisableAgent = true
	srv, err := CompleteServer(o, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Node != nil || srv.Control == nil || srv.Control.OwnNode != srv.Control.NodeName || srv.Control.OwnNode == "" ||
		srv.Control.NodePasswordFile == "" {
		t.Errorf("server %+v", srv)
	}
}

func TestDatastoreTLSFlags(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o600)
	for want, mut := range map[string]func(*ServerOptions){
		"--datastore-cafile needs --datastore-endpoint": func(o *ServerOptions) { o.DatastoreCAFile = ca },
		"go together": func(o *ServerOptions) { o.DatastoreEndpoint, o.DatastoreCertFile = "postgres://db/k", ca },
		"--datastore-keyfile": func(o *ServerOptions) {
			o.DatastoreEndpoint, o.DatastoreCertFile, o.DatastoreKeyFile = "postgres://db/k", ca, ca+".none"
		},
	} {
		o := defaults()
		mut(&o)
		if _, err := CompleteServer(o, testEnv()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	o := defaults()
	o.DatastoreEndpoint, o.DatastoreCAFile = "postgres://db/k", ca
	if s, err := CompleteServer(o, testEnv()); err != nil || s.Control.Datastore.CAFile != ca {
		t.Errorf("CA file: %+v %v", s, err)
	}
}
