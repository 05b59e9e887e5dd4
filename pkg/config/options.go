// Package config turns flags and config files into immutable, completed configs, one per
// role: flags and files fill Options, Complete derives everything else (node IP, SANs, CIDRs,
// host facts) once. A server has a control-plane part and, unless --disable-agent, a node part;
// an agent has only the node part and where to join.
package config

import (
	"time"

	"github.com/outpostk8s/outpost/pkg/spec/mig"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

// NodeOptions are the flags a server and an agent share: this machine's node.
type NodeOptions struct {
	ConfigFile       string
	PrivateRegistry  string // registries.yaml
	RegistryGiven    bool   // named by the user: a missing file is an error
	DataDir          string
	RuntimeDir       string
	NodeName         string
	NodeIP           string
	FlannelIface     string
	NodePasswordFile string
	KubeletArgs      []string
	KubeProxyArgs    []string
	Debug            bool
	Verbosity        int
	GPU              GPUOptions
}

// ServerOptions is what the user told `outpost server`, before defaults and derivation.
type ServerOptions struct {
	NodeOptions
	WriteKubeconfig     string
	WriteKubeconfigMode string
	BindAddress         string
	HTTPSListenPort     int
	TLSSANs             []string
	ClusterCIDR         string
	ServiceCIDR         string
	ClusterDNS          string
	ClusterDomain       string
	ClusterInit         bool   // --cluster-init: embedded etcd
	JoinServer          string // --server: join an embedded-etcd cluster through this server
	DatastoreEndpoint   string
	DatastoreCAFile     string
	DatastoreCertFile   string
	DatastoreKeyFile    string
	KineCompactInterval time.Duration
	KineCompactBatch    int64
	KineCompactTimeout  time.Duration
	KinePollInterval    time.Duration
	Disable             []string
	StoragePath         string // "": DATA/storage
	APIServerArgs       []string
	SchedulerArgs       []string
	ControllerArgs      []string
	Token               string
	TokenFile           string
	AgentToken          string
	AgentTokenFile      string
	FlannelBackend      string
	DisableAgent        bool
	DisableNetPol       bool // --disable-network-policy
	DisableHelm         bool // --disable-helm-controller
	LeafCertLifetime    time.Duration
	HelmResync          time.Duration // --helm-resync (tests)
	SecretsEncryption   bool
	SecretsProvider     string
	Snapshots           SnapshotOptions
	// ClusterReset with ClusterResetRestorePath restores a snapshot before the server starts.
	ClusterReset            bool
	ClusterResetRestorePath string
	// ServiceLBReservedPorts are the admin's extra ports ServiceLB must not hand out.
	ServiceLBReservedPorts []string
}

// SnapshotOptions are the --etcd-snapshot-* flags (k3s's names; SQLite too).
type SnapshotOptions struct {
	Disable   bool
	Cron      string
	Retention int
	Dir       string // "": DATA/server/db/snapshots
	Name      string
}

// AgentOptions is what the user told `outpost agent`: its node, and where and how to join.
// The cluster-wide settings come from the server.
type AgentOptions struct {
	NodeOptions
	Servers   []string
	Token     string
	TokenFile string
}

// GPUOptions are the gpu: section's settings (flags --gpu-*).
type GPUOptions struct {
	Mode        string // auto | off
	MIGStrategy string // "": mixed where a MIG layout is declared, else none
	// MIGConfig names the node's MIG layout; MIGLayouts holds MIGConfigFile's custom layouts.
	MIGConfig     string
	MIGConfigFile string
	MIGLayouts    *mig.File
	Replicas      int
	// SharingConfig names the time-slicing config file or directory; Sharing is what it holds,
	// read and checked when the config completes.
	SharingConfig  string
	Sharing        *sharing.Set
	DriverRoot     string
	DefaultRuntime string
	MetricsPort    int
	// MetricsAnonymous serves the metrics over plain HTTP without authentication.
	MetricsAnonymous bool
	CDIDir           string
	// Test-only: an NVML mock machine and a root holding fake /dev nodes.
	Mock        string
	DevRoot     string
	HealthQuiet time.Duration
}
