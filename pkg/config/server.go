package config

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/node/registries"
	"github.com/outpostk8s/outpost/pkg/snapshot"
)

// ServerFlags are `outpost server`'s flags. Every name is also a config-file key.
func ServerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: datadir.DefaultConfigFile, EnvVars: []string{"OUTPOST_CONFIG_FILE"}, Usage: "config file (its keys are these flags' names)"},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: datadir.DefaultDataDir, Usage: "folder for state, certificates and bundled binaries"},
		&cli.StringFlag{Name: "runtime-dir", Value: datadir.DefaultRuntimeDir, Usage: "folder for sockets and runtime state"},
		&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, Value: datadir.DefaultKubeconfig, EnvVars: []string{"OUTPOST_KUBECONFIG_OUTPUT"}, Usage: "where to write the admin kubeconfig"},
		&cli.StringFlag{Name: "write-kubeconfig-mode", Value: "0600", EnvVars: []string{"OUTPOST_KUBECONFIG_MODE"}, Usage: "file mode of the admin kubeconfig"},
		&cli.StringFlag{Name: "node-name", EnvVars: []string{"OUTPOST_NODE_NAME"}, Usage: "node name (default: the hostname)"},
		&cli.StringFlag{Name: "node-ip", Aliases: []string{"i"}, Usage: "IP address the node advertises (default: the address of the default route's interface)"},
		&cli.StringFlag{Name: "bind-address", Value: "0.0.0.0", Usage: "address the apiserver listens on"},
		&cli.IntFlag{Name: "https-listen-port", Value: 6443, Usage: "apiserver port"},
		&cli.StringSliceFlag{Name: "tls-san", Usage: "extra hostname or IP in the apiserver certificate (repeatable)"},
		&cli.StringFlag{Name: "cluster-cidr", Value: "10.42.0.0/16", Usage: "pod network; each node gets a /24 of it"},
		&cli.StringFlag{Name: "service-cidr", Value: "10.43.0.0/16", Usage: "service ClusterIP range"},
		&cli.StringFlag{Name: "cluster-dns", Usage: "cluster DNS service IP (default: the 10th address of --service-cidr)"},
		&cli.StringFlag{Name: "cluster-domain", Value: "cluster.local", Usage: "cluster DNS domain"},
		&cli.BoolFlag{Name: "cluster-init", Usage: "start a cluster on embedded etcd (instead of SQLite) that more servers can join with --server; an existing SQLite datastore is migrated into it once"},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"OUTPOST_URL"}, Usage: "join the embedded-etcd cluster of this server, https://HOST:6443 (with the cluster's --token)"},
		&cli.StringFlag{Name: "datastore-endpoint", EnvVars: []string{"OUTPOST_DATASTORE_ENDPOINT"}, Usage: "external datastore DSN for kine: postgres://, mysql://, https:// (etcd); default SQLite in the data dir"},
		&cli.StringFlag{Name: "datastore-cafile", EnvVars: []string{"OUTPOST_DATASTORE_CAFILE"}, Usage: "CA that signed the external datastore's certificate"},
		&cli.StringFlag{Name: "datastore-certfile", EnvVars: []string{"OUTPOST_DATASTORE_CERTFILE"}, Usage: "client certificate for the external datastore"},
		&cli.StringFlag{Name: "datastore-keyfile", EnvVars: []string{"OUTPOST_DATASTORE_KEYFILE"}, Usage: "client key for the external datastore"},
		&cli.DurationFlag{Name: "kine-compact-interval", Value: 5 * time.Minute, Usage: "how often the datastore drops old revisions"},
		&cli.Int64Flag{Name: "kine-compact-batch-size", Value: 1000, Usage: "revisions removed per compaction transaction"},
		&cli.DurationFlag{Name: "kine-poll-interval", Value: time.Second, Usage: "how often kine polls the datastore for changes made by other servers"},
		&cli.BoolFlag{Name: "disable-agent", Usage: "run only the control plane: no containerd, kubelet or pods on this machine"},
		&cli.StringSliceFlag{Name: "disable", Usage: "packaged component not to deploy: coredns, local-storage, metrics-server, servicelb (repeatable)"},
		&cli.BoolFlag{Name: "disable-helm-controller", Usage: "do not install Helm charts from HelmChart objects"},
		&cli.BoolFlag{Name: "disable-network-policy", Usage: "do not enforce NetworkPolicies (on every node of the cluster)"},
		&cli.StringFlag{Name: "default-local-storage-path", Usage: "where the local-path StorageClass makes volumes on every node (default: DATA/storage)"},
		&cli.StringSliceFlag{Name: "kube-apiserver-arg", Usage: "extra kube-apiserver flag key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "kube-scheduler-arg", Usage: "extra kube-scheduler flag key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "kube-controller-manager-arg", Usage: "extra kube-controller-manager flag key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "kubelet-arg", Usage: "extra kubelet flag key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "kube-proxy-arg", Usage: "extra kube-proxy flag key=value (repeatable)"},
		&cli.StringFlag{Name: "flannel-backend", Value: "vxlan", Usage: "pod network between nodes: vxlan, host-gw (nodes on one L2 segment) or none"},
		&cli.StringFlag{Name: "flannel-iface", Usage: "interface flannel sends pod traffic over (default: the one holding the node IP)"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"OUTPOST_TOKEN"}, Usage: "cluster join token (default: made on first start, stored in DATA/server/token)"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"OUTPOST_TOKEN_FILE"}, Usage: "file holding the cluster join token"},
		&cli.StringFlag{Name: "private-registry", Value: registries.DefaultFile, Usage: "registries.yaml (k3s's format): mirrors, credentials and TLS for image pulls; read at start"},
		&cli.StringFlag{Name: "node-password-file", Value: DefaultNodePasswordFile, Usage: "where this machine keeps the password that binds its node name to it"},
		&cli.BoolFlag{Name: "secrets-encryption", Usage: "encrypt Secrets at rest in the datastore (key made on first start; `outpost secrets-encrypt` manages it)"},
		&cli.StringFlag{Name: "secrets-encryption-provider", Value: "secretbox", Usage: "cipher for --secrets-encryption: secretbox or aescbc"},
		&cli.BoolFlag{Name: "etcd-disable-snapshots", Usage: "take no scheduled datastore snapshots"},
		&cli.StringFlag{Name: "etcd-snapshot-schedule-cron", Value: "0 */12 * * *", Usage: "when to snapshot the datastore (cron; SQLite and etcd)"},
		&cli.IntFlag{Name: "etcd-snapshot-retention", Value: 5, Usage: "scheduled snapshots to keep"},
		&cli.StringFlag{Name: "etcd-snapshot-dir", Usage: "where snapshots go (default DATA/server/db/snapshots)"},
		&cli.StringFlag{Name: "etcd-snapshot-name", Value: snapshot.ScheduledName, Usage: "name prefix of scheduled snapshots"},
		&cli.BoolFlag{Name: "cluster-reset", Usage: "start as a single server: restore the snapshot given by --cluster-reset-restore-path, or, on embedded etcd, drop the other members (once)"},
		&cli.StringFlag{Name: "cluster-reset-restore-path", Usage: "snapshot file to restore (the cluster's --token opens its bootstrap data)"},
		&cli.DurationFlag{Name: "leaf-cert-lifetime", Hidden: true, Usage: "test only: lifetime of leaf certificates (default one year), to see them renewed"},
		&cli.BoolFlag{Name: "debug", EnvVars: []string{"OUTPOST_DEBUG"}, Usage: "verbose logs from every component (-v 4)"},
		&cli.IntFlag{Name: "v", Value: 0, Usage: "log verbosity of the upstream components: 0 shows only their errors, 1 their info lines too, higher their debug levels"},
		&cli.StringFlag{Name: "gpu-mode", Value: "auto", Usage: "NVIDIA GPU support: auto (on when a driver is found) or off; config key gpu.mode"},
		&cli.StringFlag{Name: "gpu-mig-strategy", Usage: "how MIG devices are advertised: none, single or mixed (default mixed where a MIG layout is declared, else none)"},
		&cli.StringFlag{Name: "gpu-mig-config", Usage: "MIG layout of this node's GPUs: all-disabled, all-enabled, all-balanced, all-<profile> (all-1g.5gb…) or a layout of --gpu-mig-config-file; the node label nvidia.com/mig.config overrides it; config key gpu.mig-config"},
		&cli.StringFlag{Name: "gpu-mig-config-file", Usage: "custom MIG layouts in NVIDIA mig-parted's format (version: v1, mig-configs:); config key gpu.mig-config-file"},
		&cli.IntFlag{Name: "gpu-time-slicing-replicas", Value: 1, Usage: "advertise each GPU (or MIG device) this many times for time-slicing"},
		&cli.StringFlag{Name: "gpu-sharing-config", Usage: "time-slicing config in the NVIDIA device plugin's format (sharing.timeSlicing), or a directory of NAME.yaml configs a node picks with its label nvidia.com/device-plugin.config (default.yaml without it); config key gpu.sharing-config"},
		&cli.StringFlag{Name: "gpu-driver-root", Aliases: []string{"nvidia-driver-root"}, Value: "/", Usage: "where the NVIDIA driver's files are installed"},
		&cli.StringFlag{Name: "default-runtime", Usage: "containerd runtime for pods without a RuntimeClass: runc (default), nvidia, nvidia-cdi, nvidia-experimental"},
		&cli.IntFlag{Name: "gpu-metrics-port", Value: 9401, Usage: "port of the GPU metrics endpoint (Prometheus text, dcgm-exporter names); 0 disables it"},
		&cli.StringFlag{Name: "gpu-cdi-dir", Value: "/var/run/cdi", Usage: "where the GPU CDI spec is written"},
		&cli.StringFlag{Name: "gpu-mock", Hidden: true, Usage: "test only: use go-nvml's mock of this machine (dgxa100) instead of the driver"},
		&cli.StringFlag{Name: "gpu-dev-root", Hidden: true, Value: "/", Usage: "test only: root holding the /dev nodes of the GPUs"},
		&cli.DurationFlag{Name: "gpu-health-quiet", Hidden: true, Value: time.Minute, Usage: "how long an unhealthy GPU must stay quiet before a passing re-probe restores it"},
	}
}

// nodeOptionsFrom reads the flags a server and an agent share.
func nodeOptionsFrom(c *cli.Context) NodeOptions {
	return NodeOptions{
		ConfigFile:       c.String("config"),
		DataDir:          c.String("data-dir"),
		RuntimeDir:       c.String("runtime-dir"),
		NodeName:         c.String("node-name"),
		NodeIP:           c.String("node-ip"),
		FlannelIface:     c.String("flannel-iface"),
		NodePasswordFile: c.String("node-password-file"),
		PrivateRegistry:  c.String("private-registry"),
		RegistryGiven:    c.IsSet("private-registry"),
		KubeletArgs:      c.StringSlice("kubelet-arg"),
		KubeProxyArgs:    c.StringSlice("kube-proxy-arg"),
		Debug:            c.Bool("debug"),
		Verbosity:        c.Int("v"),
		GPU: GPUOptions{Mode: c.String("gpu-mode"), MIGStrategy: c.String("gpu-mig-strategy"),
			MIGConfig: c.String("gpu-mig-config"), MIGConfigFile: c.String("gpu-mig-config-file"),
			Replicas: c.Int("gpu-time-slicing-replicas"), SharingConfig: c.String("gpu-sharing-config"), DriverRoot: c.String("gpu-driver-root"),
			DefaultRuntime: c.String("default-runtime"), MetricsPort: c.Int("gpu-metrics-port"),
			CDIDir: c.String("gpu-cdi-dir"), Mock: c.String("gpu-mock"), DevRoot: c.String("gpu-dev-root"),
			HealthQuiet: c.Duration("gpu-health-quiet")},
	}
}

// ServerOptionsFrom reads a parsed command line (after the config file was merged into it).
func ServerOptionsFrom(c *cli.Context) ServerOptions {
	return ServerOptions{
		NodeOptions:         nodeOptionsFrom(c),
		WriteKubeconfig:     c.String("write-kubeconfig"),
		WriteKubeconfigMode: c.String("write-kubeconfig-mode"),
		BindAddress:         c.String("bind-address"),
		HTTPSListenPort:     c.Int("https-listen-port"),
		TLSSANs:             c.StringSlice("tls-san"),
		ClusterCIDR:         c.String("cluster-cidr"),
		ServiceCIDR:         c.String("service-cidr"),
		ClusterDNS:          c.String("cluster-dns"),
		ClusterDomain:       c.String("cluster-domain"),
		ClusterInit:         c.Bool("cluster-init"),
		JoinServer:          c.String("server"),
		DatastoreEndpoint:   c.String("datastore-endpoint"),
		DatastoreCAFile:     c.String("datastore-cafile"),
		DatastoreCertFile:   c.String("datastore-certfile"),
		DatastoreKeyFile:    c.String("datastore-keyfile"),
		KineCompactInterval: c.Duration("kine-compact-interval"),
		KineCompactBatch:    c.Int64("kine-compact-batch-size"),
		KinePollInterval:    c.Duration("kine-poll-interval"),
		Disable:             c.StringSlice("disable"),
		StoragePath:         c.String("default-local-storage-path"),
		DisableAgent:        c.Bool("disable-agent"),
		DisableNetPol:       c.Bool("disable-network-policy"),
		DisableHelm:         c.Bool("disable-helm-controller"),
		APIServerArgs:       c.StringSlice("kube-apiserver-arg"),
		SchedulerArgs:       c.StringSlice("kube-scheduler-arg"),
		ControllerArgs:      c.StringSlice("kube-controller-manager-arg"),
		Token:               c.String("token"),
		TokenFile:           c.String("token-file"),
		FlannelBackend:      c.String("flannel-backend"),
		LeafCertLifetime:    c.Duration("leaf-cert-lifetime"),
		SecretsEncryption:   c.Bool("secrets-encryption"),
		SecretsProvider:     c.String("secrets-encryption-provider"),
		Snapshots: SnapshotOptions{Disable: c.Bool("etcd-disable-snapshots"), Cron: c.String("etcd-snapshot-schedule-cron"),
			Retention: c.Int("etcd-snapshot-retention"), Dir: c.String("etcd-snapshot-dir"), Name: c.String("etcd-snapshot-name")},
		ClusterReset:            c.Bool("cluster-reset"),
		ClusterResetRestorePath: c.String("cluster-reset-restore-path"),
	}
}
