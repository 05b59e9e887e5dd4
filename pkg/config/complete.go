package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/encryption"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/token"
)

// FlannelBackends are the pod networks between nodes --flannel-backend accepts.
var FlannelBackends = []string{"vxlan", "host-gw", "none"}

// Packaged components that --disable accepts.
var Packaged = []string{"coredns"}

// Config is the completed, validated server configuration. Nothing changes it after Complete.
type Config struct {
	Dirs           datadir.Dirs
	Kubeconfig     string
	KubeconfigMode os.FileMode
	NodeName       string
	NodeIP         net.IP
	BindAddress    string
	HTTPSPort      int
	SANs           SANs
	ClusterCIDR    *net.IPNet
	ServiceCIDR    *net.IPNet
	APIServiceIP   net.IP // first address of the service CIDR: kubernetes.default
	ClusterDNS     net.IP
	ClusterDomain  string
	Datastore      Datastore
	Disabled       map[string]bool
	Extra          ExtraArgs
	Verbosity      int
	Host           hostcheck.Facts
	GPU            GPUOptions
	Token          string      // as given by --token or --token-file; "" to use or make the stored one
	Join           *JoinConfig // set on an agent only
	FlannelBackend string
	FlannelIface   string
	DisableAgent   bool // a server without its node part
	// NodePasswordFile binds this machine to its node name (server and agent alike).
	NodePasswordFile string
	// LeafLifetime of the certificates a server issues; 0: pki.DefaultLeafLifetime.
	LeafLifetime time.Duration
	// SecretsProvider encrypts Secrets at rest: "aescbc" or "secretbox"; "" for off.
	SecretsProvider string
}

// SANs are the apiserver certificate's subject alternative names.
type SANs struct {
	DNS []string
	IPs []net.IP
}

// Datastore is kine's slice of the config.
type Datastore struct {
	Endpoint        string // empty: SQLite in the data dir
	CompactInterval time.Duration
	CompactBatch    int64
	PollInterval    time.Duration
}

// ExtraArgs are the user's extra upstream flags, per component.
type ExtraArgs struct {
	APIServer, Scheduler, ControllerManager, Kubelet, KubeProxy []string
}

// Env is what Complete reads from the machine, injected for tests.
type Env struct {
	Hostname  func() (string, error)
	DefaultIP func() (net.IP, error)
	Host      hostcheck.Host
}

// Complete applies defaults, derives the rest and validates, once.
func Complete(o ServerOptions, env Env) (*Config, error) {
	c := &Config{
		BindAddress:   o.BindAddress,
		HTTPSPort:     o.HTTPSListenPort,
		ClusterDomain: o.ClusterDomain,
		Verbosity:     o.Verbosity,
		Disabled:      map[string]bool{},
		Extra: ExtraArgs{APIServer: o.APIServerArgs, Scheduler: o.SchedulerArgs,
			ControllerManager: o.ControllerArgs, Kubelet: o.KubeletArgs, KubeProxy: o.KubeProxyArgs},
		Datastore: Datastore{Endpoint: o.DatastoreEndpoint, CompactInterval: o.KineCompactInterval,
			CompactBatch: o.KineCompactBatch, PollInterval: o.KinePollInterval},
	}
	if o.Debug && c.Verbosity < 4 {
		c.Verbosity = 4
	}
	var err error
	if c.Dirs.Data, err = absDir("--data-dir", o.DataDir); err != nil {
		return nil, err
	}
	if c.Dirs.Runtime, err = absDir("--runtime-dir", o.RuntimeDir); err != nil {
		return nil, err
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
	// It ends up in the kubelet's DNS search path and the apiserver's SANs: a bad one breaks
	// every pod's name lookups, so refuse it before anything starts.
	if !isDNSSubdomain(c.ClusterDomain) {
		return nil, fmt.Errorf("--cluster-domain %q is not a lower-case DNS name: use one such as cluster.local", o.ClusterDomain)
	}
	if c.NodeName, err = nodeName(o.NodeName, env); err != nil {
		return nil, err
	}
	if c.NodeIP, err = nodeIP(o.NodeIP, env); err != nil {
		return nil, err
	}
	if c.ClusterCIDR, err = cidr("--cluster-cidr", o.ClusterCIDR); err != nil {
		return nil, err
	}
	if c.ServiceCIDR, err = cidr("--service-cidr", o.ServiceCIDR); err != nil {
		return nil, err
	}
	if ones, bits := c.ClusterCIDR.Mask.Size(); bits == 32 && ones > 24 {
		return nil, fmt.Errorf("--cluster-cidr %s is smaller than one node's /24: use a /16 to /24", o.ClusterCIDR)
	}
	if c.ClusterCIDR.Contains(c.ServiceCIDR.IP) || c.ServiceCIDR.Contains(c.ClusterCIDR.IP) {
		return nil, fmt.Errorf("--cluster-cidr %s and --service-cidr %s overlap: pick disjoint ranges", o.ClusterCIDR, o.ServiceCIDR)
	}
	c.APIServiceIP = nthIP(c.ServiceCIDR, 1)
	if o.ClusterDNS == "" {
		c.ClusterDNS = nthIP(c.ServiceCIDR, 10)
	} else if c.ClusterDNS = net.ParseIP(o.ClusterDNS); c.ClusterDNS == nil || !c.ServiceCIDR.Contains(c.ClusterDNS) {
		return nil, fmt.Errorf("--cluster-dns %q must be an address inside --service-cidr %s", o.ClusterDNS, o.ServiceCIDR)
	}
	for _, d := range o.Disable {
		if !contains(Packaged, d) {
			return nil, fmt.Errorf("--disable %q: unknown component; known: %s", d, strings.Join(Packaged, ", "))
		}
		c.Disabled[d] = true
	}
	if err := validateDSN(o.DatastoreEndpoint); err != nil {
		return nil, err
	}
	if c.Datastore.CompactInterval <= 0 || c.Datastore.PollInterval <= 0 || c.Datastore.CompactBatch <= 0 {
		return nil, fmt.Errorf("--kine-compact-interval, --kine-poll-interval and --kine-compact-batch-size must be positive")
	}
	if c.Token, err = givenToken(o.Token, o.TokenFile); err != nil {
		return nil, err
	}
	if !contains(FlannelBackends, o.FlannelBackend) {
		return nil, fmt.Errorf("--flannel-backend %q: want %s", o.FlannelBackend, strings.Join(FlannelBackends, ", "))
	}
	c.FlannelBackend, c.FlannelIface, c.DisableAgent = o.FlannelBackend, o.FlannelIface, o.DisableAgent
	if c.GPU, err = gpuOptions(o.GPU); err != nil {
		return nil, err
	}
	if o.NodePasswordFile == "" {
		o.NodePasswordFile = DefaultNodePasswordFile
	}
	if c.NodePasswordFile, err = absDir("--node-password-file", o.NodePasswordFile); err != nil {
		return nil, err
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
	c.SANs = sans(c, o.TLSSANs)
	c.Host = env.Host.Detect()
	return c, nil
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
	if !isDNSSubdomain(v) {
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

func sans(c *Config, extra []string) SANs {
	s := SANs{DNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + c.ClusterDomain, c.NodeName}}
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

// IsDNSName reports whether s is a lower-case DNS name (RFC 1123 subdomain).
func IsDNSName(s string) bool { return isDNSSubdomain(s) }

func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
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
	case "none", "single", "mixed":
	default:
		return g, fmt.Errorf("--gpu-mig-strategy %q is not one of none, single, mixed", g.MIGStrategy)
	}
	if g.Replicas < 1 {
		return g, fmt.Errorf("--gpu-time-slicing-replicas %d must be 1 or more", g.Replicas)
	}
	if g.MetricsPort < 0 || g.MetricsPort > 65535 {
		return g, fmt.Errorf("--gpu-metrics-port %d is out of range 0-65535", g.MetricsPort)
	}
	if g.Mock != "" && g.Mock != "dgxa100" {
		return g, fmt.Errorf("--gpu-mock %q: only dgxa100 is known", g.Mock)
	}
	return g, nil
}

// givenToken reads --token or --token-file; the token's format is checked here, before
// anything is written.
func givenToken(tok, file string) (string, error) {
	if tok != "" && file != "" {
		return "", fmt.Errorf("--token and --token-file both set: use one")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return "", nil
	}
	if _, err := token.Parse(tok); err != nil {
		return "", fmt.Errorf("--token: %w", err)
	}
	return tok, nil
}
