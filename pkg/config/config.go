package config

import (
	"net"
	"os"
	"time"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/hostport"
	"github.com/outpostk8s/outpost/pkg/spec/registries"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Node is the completed config of this machine's node part (containerd, kubelet, kube-proxy,
// network, GPU): the same on a server and an agent. Nothing changes it after Complete, except
// that an agent learns Cluster from its join.
type Node struct {
	Dirs             datadir.Dirs
	NodeName         string
	NodeIP           net.IP
	FlannelIface     string
	NodePasswordFile string
	KubeletArgs      []string
	KubeProxyArgs    []string
	Verbosity        int
	Host             hostcheck.Facts
	GPU              GPUOptions
	Registries       *registries.File
	// Cluster is the server's own settings, or the ones an agent's join answer carried.
	Cluster cluster.Settings
}

// Control is the completed config of the control plane: datastore, apiserver, scheduler,
// controller-manager, deploy, join API.
type Control struct {
	Dirs           datadir.Dirs
	Kubeconfig     string
	KubeconfigMode os.FileMode
	NodeName       string // this machine's: a name in the serving certificate
	NodeIP         net.IP // the apiserver's advertise address
	BindAddress    string
	HTTPSPort      int
	SANs           SANs
	APIServiceIP   net.IP // first address of the service CIDR: kubernetes.default
	Cluster        cluster.Settings
	Datastore      Datastore
	// Etcd: the datastore is embedded etcd (--cluster-init, --server, or an etcd data dir
	// from an earlier start) instead of kine.
	Etcd bool
	// JoinServer is the server a new etcd member joins through ("" for the first).
	JoinServer string
	// Disabled are the packaged manifests not deployed (the --disable names, and those of
	// what Cluster and DisableHelm turn off): derived from them, not a second record.
	Disabled    map[string]bool
	DisableHelm bool // no HelmChart controller
	// HelmResync is how often the Helm controller looks at every chart again; 0: its default.
	HelmResync time.Duration
	// ServiceLBReserved are the admin's ports ServiceLB refuses on top of Outpost's own
	// (--servicelb-reserved-ports).
	ServiceLBReserved []hostport.Port
	// StoragePath is where local-path volumes go on every node (absolute).
	StoragePath string
	Args        ControlArgs
	Verbosity   int
	// Token as given by --token or --token-file, parsed; nil to use or make the stored one.
	Token *token.Token
	// AgentToken as given by --agent-token or --agent-token-file, parsed; nil to use or make
	// the stored one.
	AgentToken *token.Token
	// NodePasswordFile binds the server's name to this machine, with or without a node of its
	// own: a joining server proves it to be given its etcd member back.
	NodePasswordFile string
	// LeafLifetime of the certificates the server issues; 0: pki.DefaultLeafLifetime.
	LeafLifetime time.Duration
	// SecretsProvider encrypts Secrets at rest: "secretbox" or "aescbc"; "" for off.
	SecretsProvider string
	// OwnNode is the server's own node name, with or without --disable-agent: no join may take it.
	OwnNode string
	// Snapshots of the datastore: scheduled unless Schedule is "" (off, or an external
	// datastore, which keeps its own backups).
	Snapshots Snapshots
	// RestoreFrom is a snapshot to restore before starting (--cluster-reset
	// --cluster-reset-restore-path), absolute; "" for none.
	RestoreFrom string
	// ResetMembers (--cluster-reset alone, embedded etcd): this member starts as the only one,
	// so a server whose peers are gone for good serves again.
	ResetMembers bool
}

// Snapshots is where and when the server snapshots its datastore.
type Snapshots struct {
	Schedule  string // a valid cron spec, or "" for no scheduled snapshots
	Retention int
	Dir       string
	Name      string
}

// Server is `outpost server`: the control plane and, unless --disable-agent, a node.
type Server struct {
	Control *Control
	Node    *Node // nil with --disable-agent
}

// Agent is `outpost agent`: a node, and where and how it joins.
type Agent struct {
	Node *Node
	Join JoinConfig
}

// JoinConfig is where and how an agent joins.
type JoinConfig struct {
	Servers      []string
	Token        token.Token
	PasswordFile string
}

// SANs are the apiserver certificate's subject alternative names.
type SANs struct {
	DNS []string
	IPs []net.IP
}

// Datastore is kine's slice of the config.
type Datastore struct {
	Endpoint string // empty: SQLite in the data dir
	// CAFile, CertFile, KeyFile: TLS to the external datastore (--datastore-cafile, ...).
	CAFile, CertFile, KeyFile string
	CompactInterval           time.Duration
	CompactBatch              int64
	CompactTimeout            time.Duration
	PollInterval              time.Duration
}

// ControlArgs are the user's extra upstream flags for the control-plane components.
type ControlArgs struct {
	APIServer, Scheduler, ControllerManager []string
}

// Env is what Complete reads from the machine, injected for tests.
type Env struct {
	Hostname  func() (string, error)
	DefaultIP func() (net.IP, error)
	Host      hostcheck.Host
	// Exists reports whether a path exists (an embedded etcd from an earlier start); nil: no.
	Exists func(path string) bool
}
