package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/encryption"
	"github.com/outpostk8s/outpost/pkg/hostport"
	"github.com/outpostk8s/outpost/pkg/snapshot"
	"github.com/outpostk8s/outpost/pkg/spec/mig"
	"github.com/outpostk8s/outpost/pkg/spec/registries"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Packaged lists the components --disable accepts.
func Packaged() []string { return []string{"coredns", "local-storage", "metrics-server", "servicelb"} }

// CompleteServer applies defaults, derives the rest and validates, once: the control plane's
// config and, unless --disable-agent, the node's.
func CompleteServer(o ServerOptions, env Env) (*Server, error) {
	node, err := completeNode(o.NodeOptions, env)
	if err != nil {
		return nil, err
	}
	c := &Control{
		Dirs:        node.Dirs,
		NodeName:    node.NodeName,
		NodeIP:      node.NodeIP,
		BindAddress: o.BindAddress,
		HTTPSPort:   o.HTTPSListenPort,
		Verbosity:   node.Verbosity,
		Args:        ControlArgs{APIServer: o.APIServerArgs, Scheduler: o.SchedulerArgs, ControllerManager: o.ControllerArgs},
		Datastore: Datastore{Endpoint: o.DatastoreEndpoint, CompactInterval: o.KineCompactInterval,
			CompactBatch: o.KineCompactBatch, CompactTimeout: o.KineCompactTimeout, PollInterval: o.KinePollInterval},
	}
	if c.Kubeconfig, err = absDir("--write-kubeconfig", o.WriteKubeconfig); err != nil {
		return nil, err
	}
	mode, err := strconv.ParseUint(o.WriteKubeconfigMode, 8, 32)
	if err != nil || mode > 0o777 {
		return nil, fmt.Errorf("--write-kubeconfig-mode %q is not an octal file mode such as 0600", o.WriteKubeconfigMode)
	}
	c.KubeconfigMode = os.FileMode(mode)
	if c.HTTPSPort < 1 || c.HTTPSPort > 65535 {
		return nil, fmt.Errorf("--https-listen-port %d is out of range 1-65535", c.HTTPSPort)
	}
	if net.ParseIP(c.BindAddress) == nil {
		return nil, fmt.Errorf("--bind-address %q is not an IP address", c.BindAddress)
	}
	if c.Cluster, c.APIServiceIP, err = clusterSettings(o); err != nil {
		return nil, err
	}
	c.DisableHelm, c.HelmResync = o.DisableHelm, o.HelmResync
	if c.Disabled, err = manifestsOff(o.Disable, c.Cluster, c.DisableHelm); err != nil {
		return nil, err
	}
	if c.ServiceLBReserved, err = hostport.Parse(o.ServiceLBReservedPorts); err != nil {
		return nil, fmt.Errorf("--servicelb-reserved-ports %w", err)
	}
	if c.StoragePath, err = storagePath(o.StoragePath, node.Dirs.Storage()); err != nil {
		return nil, err
	}
	if err := validateDSN(o.DatastoreEndpoint); err != nil {
		return nil, err
	}
	if c.Datastore.CAFile, c.Datastore.CertFile, c.Datastore.KeyFile, err = datastoreTLS(o); err != nil {
		return nil, err
	}
	if c.Etcd, err = embeddedEtcd(o, node.Dirs, env.Exists); err != nil {
		return nil, err
	}
	c.JoinServer = o.JoinServer
	if c.Datastore.CompactInterval <= 0 || c.Datastore.PollInterval <= 0 || c.Datastore.CompactBatch <= 0 || c.Datastore.CompactTimeout <= 0 {
		return nil, fmt.Errorf("--kine-compact-interval, --kine-compact-timeout, --kine-poll-interval and --kine-compact-batch-size must be positive")
	}
	if c.Token, err = givenToken("--token", o.Token, o.TokenFile); err != nil {
		return nil, err
	}
	if c.AgentToken, err = givenToken("--agent-token", o.AgentToken, o.AgentTokenFile); err != nil {
		return nil, err
	}
	if c.Token != nil && c.AgentToken != nil {
		if c.Token.Matches(*c.AgentToken) {
			return nil, fmt.Errorf("--agent-token is the cluster's --token: give agents a token of their own, or leave --agent-token out to have one made")
		}
	}
	c.NodePasswordFile = node.NodePasswordFile
	if c.JoinServer != "" && c.Token == nil {
		return nil, fmt.Errorf("--server needs the cluster's --token (or --token-file): take it from the first server's /var/lib/outpost/server/token")
	}
	if o.LeafCertLifetime < 0 || (o.LeafCertLifetime > 0 && o.LeafCertLifetime < 2*time.Minute) {
		return nil, fmt.Errorf("--leaf-cert-lifetime %s: want 2m or more", o.LeafCertLifetime)
	}
	c.LeafLifetime = o.LeafCertLifetime
	if o.SecretsEncryption {
		if !contains(encryption.Providers(), o.SecretsProvider) {
			return nil, fmt.Errorf("--secrets-encryption-provider %q: want %s", o.SecretsProvider, strings.Join(encryption.Providers(), " or "))
		}
		c.SecretsProvider = o.SecretsProvider
	}
	if c.Snapshots, err = snapshots(o, node.Dirs); err != nil {
		return nil, err
	}
	if c.RestoreFrom, err = restore(o, c.Etcd); err != nil {
		return nil, err
	}
	c.ResetMembers = o.ClusterReset && c.RestoreFrom == ""
	c.SANs = sans(c, o.TLSSANs)
	c.OwnNode = node.NodeName
	if o.DisableAgent {
		return &Server{Control: c}, nil
	}
	node.Cluster = c.Cluster
	return &Server{Control: c, Node: node}, nil
}

// manifestsOff are the packaged manifests the server does not deploy: the --disable names, and
// those of what the completed settings turn off. Derived here only, so that Cluster and
// DisableHelm stay the one record of those facts.
func manifestsOff(disable []string, s cluster.Settings, noHelm bool) (map[string]bool, error) {
	off := map[string]bool{}
	for _, d := range disable {
		if !contains(Packaged(), d) {
			return nil, fmt.Errorf("--disable %q: unknown component; known: %s", d, strings.Join(Packaged(), ", "))
		}
		off[d] = true
	}
	// Only true entries: the deploy controller removes every key's objects.
	// Not a --disable name (k3s has its own flag); its manifest is the role the nodes need.
	if !s.NetworkPolicy {
		off["network-policy"] = true
	}
	// Its manifest makes the controller's identity cluster admin: removed with it.
	if noHelm {
		off["helm-controller"] = true
	}
	return off, nil
}

// clusterSettings derives the cluster-wide values from a server's flags.
func clusterSettings(o ServerOptions) (cluster.Settings, net.IP, error) {
	var s cluster.Settings
	var err error
	// It ends up in the kubelet's DNS search path and the apiserver's SANs: a bad one breaks
	// every pod's name lookups, so refuse it before anything starts.
	if !cluster.IsDNSName(o.ClusterDomain) {
		return s, nil, fmt.Errorf("--cluster-domain %q is not a lower-case DNS name: use one such as cluster.local", o.ClusterDomain)
	}
	s.ClusterDomain = o.ClusterDomain
	if s.ClusterCIDR, err = cidr("--cluster-cidr", o.ClusterCIDR); err != nil {
		return s, nil, err
	}
	if s.ServiceCIDR, err = cidr("--service-cidr", o.ServiceCIDR); err != nil {
		return s, nil, err
	}
	if ones, bits := s.ClusterCIDR.Mask.Size(); bits == 32 && ones > 24 {
		return s, nil, fmt.Errorf("--cluster-cidr %s is smaller than one node's /24: use a /16 to /24", o.ClusterCIDR)
	}
	if s.ClusterCIDR.Contains(s.ServiceCIDR.IP) || s.ServiceCIDR.Contains(s.ClusterCIDR.IP) {
		return s, nil, fmt.Errorf("--cluster-cidr %s and --service-cidr %s overlap: pick disjoint ranges", o.ClusterCIDR, o.ServiceCIDR)
	}
	if o.ClusterDNS == "" {
		s.ClusterDNS = nthIP(s.ServiceCIDR, 10)
	} else if s.ClusterDNS = net.ParseIP(o.ClusterDNS); s.ClusterDNS == nil || !s.ServiceCIDR.Contains(s.ClusterDNS) {
		return s, nil, fmt.Errorf("--cluster-dns %q must be an address inside --service-cidr %s", o.ClusterDNS, o.ServiceCIDR)
	}
	if !contains(cluster.FlannelBackends(), o.FlannelBackend) {
		return s, nil, fmt.Errorf("--flannel-backend %q: want %s", o.FlannelBackend, strings.Join(cluster.FlannelBackends(), ", "))
	}
	s.FlannelBackend, s.NetworkPolicy = o.FlannelBackend, !o.DisableNetPol
	if err := s.Validate(); err != nil {
		return s, nil, fmt.Errorf("--service-cidr %s, --cluster-dns: %w", o.ServiceCIDR, err)
	}
	return s, nthIP(s.ServiceCIDR, 1), nil
}

// CompleteAgent completes an agent's node config (its Cluster comes with the join) and where
// it joins.
func CompleteAgent(o AgentOptions, env Env) (*Agent, error) {
	if len(o.Servers) == 0 {
		return nil, fmt.Errorf("--server is required (or OUTPOST_URL): the server to join, such as https://10.0.0.1:6443")
	}
	for _, s := range o.Servers {
		if err := CheckServerURL(s); err != nil {
			return nil, err
		}
	}
	node, err := completeNode(o.NodeOptions, env)
	if err != nil {
		return nil, err
	}
	tok, err := givenToken("--token", o.Token, o.TokenFile)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, fmt.Errorf("--token is required (or OUTPOST_TOKEN, --token-file): take it from the server's /var/lib/outpost/server/agent-token or `outpost token create`")
	}
	return &Agent{Node: node, Join: JoinConfig{Servers: o.Servers, Token: *tok, PasswordFile: node.NodePasswordFile}}, nil
}

// CheckServerURL says what is wrong with a --server value.
func CheckServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--server %q: want https://HOST:PORT, for example https://10.0.0.1:6443", s)
	}
	return nil
}

// completeNode completes what a server and an agent share.
func completeNode(o NodeOptions, env Env) (*Node, error) {
	n := &Node{Verbosity: o.Verbosity, FlannelIface: o.FlannelIface, KubeletArgs: o.KubeletArgs, KubeProxyArgs: o.KubeProxyArgs}
	if o.Debug && n.Verbosity < 4 {
		n.Verbosity = 4
	}
	var err error
	if n.Dirs.Data, err = absDir("--data-dir", o.DataDir); err != nil {
		return nil, err
	}
	if n.Dirs.Runtime, err = absDir("--runtime-dir", o.RuntimeDir); err != nil {
		return nil, err
	}
	if n.NodeName, err = nodeName(o.NodeName, env); err != nil {
		return nil, err
	}
	if n.NodeIP, err = nodeIP(o.NodeIP, env); err != nil {
		return nil, err
	}
	if n.GPU, err = gpuOptions(o.GPU); err != nil {
		return nil, err
	}
	if o.NodePasswordFile == "" {
		o.NodePasswordFile = DefaultNodePasswordFile
	}
	if n.NodePasswordFile, err = absDir("--node-password-file", o.NodePasswordFile); err != nil {
		return nil, err
	}
	if n.Registries, err = registries.Load(o.PrivateRegistry, o.RegistryGiven); err != nil {
		return nil, err
	}
	n.Host = env.Host.Detect()
	return n, nil
}

func absDir(flag, p string) (string, error) {
	if strings.TrimSpace(p) == "" {
		return "", fmt.Errorf("%s must not be empty", flag)
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, p, err)
	}
	return a, nil
}

func nodeName(v string, env Env) (string, error) {
	if v == "" {
		h, err := env.Hostname()
		if err != nil {
			return "", fmt.Errorf("read hostname for the node name: %w (set --node-name)", err)
		}
		v = h
	}
	v = strings.ToLower(v)
	if !cluster.IsDNSName(v) {
		return "", fmt.Errorf("node name %q is not a valid DNS name (lower-case letters, digits, '-' and '.'): set --node-name", v)
	}
	return v, nil
}

func nodeIP(v string, env Env) (net.IP, error) {
	if v != "" {
		ip := net.ParseIP(v)
		if ip == nil {
			return nil, fmt.Errorf("--node-ip %q is not an IP address", v)
		}
		return ip, nil
	}
	ip, err := env.DefaultIP()
	if err != nil {
		return nil, fmt.Errorf("find the node IP: %w (set --node-ip)", err)
	}
	return ip, nil
}

func cidr(flag, v string) (*net.IPNet, error) {
	ip, n, err := net.ParseCIDR(v)
	if err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("%s %q is not an IPv4 CIDR such as 10.42.0.0/16", flag, v)
	}
	return n, nil
}

// nthIP is the n-th address after the network address.
func nthIP(n *net.IPNet, i int) net.IP {
	ip := make(net.IP, len(n.IP.To4()))
	copy(ip, n.IP.To4())
	for b := len(ip) - 1; b >= 0 && i > 0; b-- {
		sum := int(ip[b]) + i
		ip[b] = byte(sum % 256)
		i = sum / 256
	}
	return ip
}

func sans(c *Control, extra []string) SANs {
	s := SANs{DNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + c.Cluster.ClusterDomain, c.NodeName}}
	s.IPs = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), c.NodeIP, c.APIServiceIP}
	for _, e := range extra {
		if ip := net.ParseIP(e); ip != nil {
			s.IPs = append(s.IPs, ip)
		} else if e != "" {
			s.DNS = append(s.DNS, e)
		}
	}
	return s
}

func validateDSN(dsn string) error {
	if dsn == "" {
		return nil
	}
	for _, p := range []string{"postgres://", "postgresql://", "mysql://", "https://", "http://", "sqlite://", "nats://"} {
		if strings.HasPrefix(dsn, p) {
			return nil
		}
	}
	return fmt.Errorf("--datastore-endpoint must start with postgres://, mysql://, https:// (etcd) or sqlite://")
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func gpuOptions(g GPUOptions) (GPUOptions, error) {
	switch g.Mode {
	case "auto", "off":
	default:
		return g, fmt.Errorf("--gpu-mode %q is not auto or off", g.Mode)
	}
	switch g.MIGStrategy {
	case "", "none", "single", "mixed":
	default:
		return g, fmt.Errorf("--gpu-mig-strategy %q is not one of none, single, mixed", g.MIGStrategy)
	}
	if g.MIGConfigFile != "" {
		f, err := mig.Load(g.MIGConfigFile)
		if err != nil {
			return g, fmt.Errorf("--gpu-mig-config-file: %w", err)
		}
		g.MIGLayouts = f
	}
	if g.MIGConfig != "" && !g.MIGLayouts.Has(g.MIGConfig) {
		return g, fmt.Errorf("--gpu-mig-config %q is not a MIG layout: use all-disabled, all-enabled, all-balanced, all-<profile> or a layout of --gpu-mig-config-file", g.MIGConfig)
	}
	if g.Replicas < 1 {
		return g, fmt.Errorf("--gpu-time-slicing-replicas %d must be 1 or more", g.Replicas)
	}
	if g.SharingConfig != "" {
		s, err := sharing.Load(g.SharingConfig)
		if err != nil {
			return g, fmt.Errorf("--gpu-sharing-config: %w", err)
		}
		g.Sharing = s
	}
	if g.MetricsPort < 0 || g.MetricsPort > 65535 {
		return g, fmt.Errorf("--gpu-metrics-port %d is out of range 0-65535", g.MetricsPort)
	}
	if g.Mock != "" && g.Mock != "dgxa100" {
		return g, fmt.Errorf("--gpu-mock %q: only dgxa100 is known", g.Mock)
	}
	return g, nil
}

// givenToken reads flag (--token, --agent-token) or flag-file, parsed once here, before
// anything is written: nil when neither is given.
func givenToken(flag, tok, file string) (*token.Token, error) {
	if tok != "" && file != "" {
		return nil, fmt.Errorf("%s and %s-file both set: use one", flag, flag)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s-file: %w", flag, err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return nil, nil
	}
	t, err := token.Parse(tok)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return &t, nil
}

// storagePath checks --default-local-storage-path: absolute, and a directory if it exists
// (a missing one is made at start).
func storagePath(given, def string) (string, error) {
	if given == "" {
		return def, nil
	}
	if !filepath.IsAbs(given) {
		return "", fmt.Errorf("--default-local-storage-path %q is relative: give an absolute path", given)
	}
	if fi, err := os.Stat(given); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("--default-local-storage-path %s exists and is not a directory: give a directory", given)
	}
	return filepath.Clean(given), nil
}

// snapshots completes the --etcd-snapshot-* flags: the dir is always known (the snapshot
// commands use it); the schedule only for the built-in SQLite datastore.
func snapshots(o ServerOptions, d datadir.Dirs) (Snapshots, error) {
	so := o.Snapshots
	s := Snapshots{Retention: so.Retention, Name: so.Name, Dir: so.Dir}
	if s.Dir == "" {
		s.Dir = d.Snapshots()
	}
	var err error
	if s.Dir, err = absDir("--etcd-snapshot-dir", s.Dir); err != nil {
		return s, err
	}
	if err := snapshot.ValidName(so.Name); err != nil {
		return s, fmt.Errorf("--etcd-snapshot-name: %w", err)
	}
	if so.Retention < 1 {
		return s, fmt.Errorf("--etcd-snapshot-retention %d: keep at least 1", so.Retention)
	}
	if _, err := snapshot.ParseSchedule(so.Cron); err != nil {
		return s, err
	}
	if !so.Disable && o.DatastoreEndpoint == "" {
		s.Schedule = so.Cron
	}
	return s, nil
}

// restore checks --cluster-reset and --cluster-reset-restore-path: what can be known before
// anything is read or written.
func restore(o ServerOptions, etcd bool) (string, error) {
	if o.ClusterResetRestorePath != "" && !o.ClusterReset {
		return "", fmt.Errorf("--cluster-reset-restore-path needs --cluster-reset")
	}
	if !o.ClusterReset {
		return "", nil
	}
	if o.JoinServer != "" {
		return "", fmt.Errorf("--cluster-reset with --server: a restored server starts a cluster alone; leave --server out")
	}
	if o.DatastoreEndpoint != "" {
		return "", fmt.Errorf("--cluster-reset with --datastore-endpoint: restore the external datastore with its own tools")
	}
	if o.ClusterResetRestorePath == "" {
		if etcd {
			return "", nil // embedded etcd: this member goes on alone (ResetMembers)
		}
		return "", fmt.Errorf("--cluster-reset: give the snapshot to restore with --cluster-reset-restore-path (only embedded etcd has members to reset)")
	}
	return absDir("--cluster-reset-restore-path", o.ClusterResetRestorePath)
}

// embeddedEtcd says whether the datastore is embedded etcd: asked for with --cluster-init or
// --server, or kept from an earlier start (its data dir holds a member), as k3s does.
func embeddedEtcd(o ServerOptions, d datadir.Dirs, exists func(string) bool) (bool, error) {
	if o.ClusterInit && o.JoinServer != "" {
		return false, fmt.Errorf("--cluster-init starts a new cluster and --server joins one: give one of them")
	}
	for flag, set := range map[string]bool{"--cluster-init": o.ClusterInit, "--server": o.JoinServer != ""} {
		if set && o.DatastoreEndpoint != "" {
			return false, fmt.Errorf("%s runs embedded etcd, --datastore-endpoint an external datastore: give one of them", flag)
		}
	}
	if o.JoinServer != "" {
		if err := CheckServerURL(o.JoinServer); err != nil {
			return false, err
		}
	}
	if o.ClusterInit || o.JoinServer != "" {
		return true, nil
	}
	member := exists != nil && exists(filepath.Join(d.EtcdDataDir(), "member"))
	if member && o.DatastoreEndpoint != "" {
		return false, fmt.Errorf("--datastore-endpoint: this server's datastore is embedded etcd (%s): remove that dir to move to an external datastore", d.EtcdDataDir())
	}
	return member, nil
}

// datastoreTLS checks --datastore-cafile, -certfile and -keyfile: readable, the pair together,
// and only with an external datastore.
func datastoreTLS(o ServerOptions) (ca, cert, key string, err error) {
	files := map[string]string{"--datastore-cafile": o.DatastoreCAFile, "--datastore-certfile": o.DatastoreCertFile, "--datastore-keyfile": o.DatastoreKeyFile}
	for _, flag := range []string{"--datastore-cafile", "--datastore-certfile", "--datastore-keyfile"} {
		f := files[flag]
		if f == "" {
			continue
		}
		if o.DatastoreEndpoint == "" {
			return "", "", "", fmt.Errorf("%s needs --datastore-endpoint", flag)
		}
		if _, err := os.Stat(f); err != nil {
			return "", "", "", fmt.Errorf("%s: %w", flag, err)
		}
		if files[flag], err = filepath.Abs(f); err != nil {
			return "", "", "", fmt.Errorf("%s: %w", flag, err)
		}
	}
	if (o.DatastoreCertFile == "") != (o.DatastoreKeyFile == "") {
		return "", "", "", fmt.Errorf("--datastore-certfile and --datastore-keyfile go together")
	}
	return files["--datastore-cafile"], files["--datastore-certfile"], files["--datastore-keyfile"], nil
}
