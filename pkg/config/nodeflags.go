package config

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/spec/registries"
)

// nodeFlags are the flags of this machine's node, the same on a server and an agent.
func nodeFlags(b *binder, o *NodeOptions) []cli.Flag {
	b.config = &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Category: catData, Value: datadir.DefaultConfigFile, EnvVars: []string{"OUTPOST_CONFIG_FILE"}, Destination: &o.ConfigFile,
		Usage: "config file (its keys are these flags' names)"}
	g := &o.GPU
	return []cli.Flag{
		b.config,
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Category: catData, Value: datadir.DefaultDataDir, Destination: &o.DataDir,
			Usage: "folder for state, certificates and bundled binaries"},
		&cli.StringFlag{Name: "runtime-dir", Category: catData, Value: datadir.DefaultRuntimeDir, Destination: &o.RuntimeDir,
			Usage: "folder for sockets and runtime state"},
		&cli.StringFlag{Name: "node-name", Category: catNode, EnvVars: []string{"OUTPOST_NODE_NAME"}, Destination: &o.NodeName,
			Usage: "node name (default: the hostname)"},
		&cli.StringFlag{Name: "node-ip", Aliases: []string{"i"}, Category: catNode, Destination: &o.NodeIP,
			Usage: "IP address the node advertises (default: the address of the default route's interface)"},
		&cli.StringFlag{Name: "node-password-file", Category: catNode, Value: DefaultNodePasswordFile, Destination: &o.NodePasswordFile,
			Usage: "where this machine keeps the password that binds its node name to it"},
		// A registries.yaml the user named must exist; the default one may not.
		b.given(&o.RegistryGiven, &cli.StringFlag{Name: "private-registry", Category: catNode, Value: registries.DefaultFile, Destination: &o.PrivateRegistry,
			Usage: "registries.yaml (k3s's format): mirrors, credentials and TLS for image pulls; read at start"}),
		&cli.StringSliceFlag{Name: "kubelet-arg", Category: catNode, Destination: b.strings(&o.KubeletArgs),
			Usage: "extra kubelet flag key=value (repeatable)"},
		&cli.StringSliceFlag{Name: "kube-proxy-arg", Category: catNode, Destination: b.strings(&o.KubeProxyArgs),
			Usage: "extra kube-proxy flag key=value (repeatable)"},
		&cli.StringFlag{Name: "flannel-iface", Category: catNetworking, Destination: &o.FlannelIface,
			Usage: "interface flannel sends pod traffic over (default: the one holding the node IP)"},
		&cli.BoolFlag{Name: "debug", Category: catLogging, EnvVars: []string{"OUTPOST_DEBUG"}, Destination: &o.Debug,
			Usage: "verbose logs from every component (-v 4)"},
		&cli.IntFlag{Name: "v", Category: catLogging, Value: 0, Destination: &o.Verbosity,
			Usage: "log verbosity of the upstream components: 0 shows only their errors, 1 their info lines too, higher their debug levels"},
		&cli.StringFlag{Name: "gpu-mode", Category: catGPU, Value: "auto", Destination: &g.Mode,
			Usage: "NVIDIA GPU support: auto (on when a driver is found) or off; config key gpu.mode"},
		&cli.StringFlag{Name: "gpu-mig-strategy", Category: catGPU, Destination: &g.MIGStrategy,
			Usage: "how MIG devices are advertised: none, single or mixed (default mixed where a MIG layout is declared, else none)"},
		&cli.StringFlag{Name: "gpu-mig-config", Category: catGPU, Destination: &g.MIGConfig,
			Usage: "MIG layout of this node's GPUs: all-disabled, all-enabled, all-balanced, all-<profile> (all-1g.5gb…) or a layout of --gpu-mig-config-file; the node label nvidia.com/mig.config overrides it; config key gpu.mig-config"},
		&cli.StringFlag{Name: "gpu-mig-config-file", Category: catGPU, Destination: &g.MIGConfigFile,
			Usage: "custom MIG layouts in NVIDIA mig-parted's format (version: v1, mig-configs:); config key gpu.mig-config-file"},
		&cli.IntFlag{Name: "gpu-time-slicing-replicas", Category: catGPU, Value: 1, Destination: &g.Replicas,
			Usage: "advertise each GPU (or MIG device) this many times for time-slicing"},
		&cli.StringFlag{Name: "gpu-sharing-config", Category: catGPU, Destination: &g.SharingConfig,
			Usage: "time-slicing config in the NVIDIA device plugin's format (sharing.timeSlicing), or a directory of NAME.yaml configs a node picks with its label nvidia.com/device-plugin.config (default.yaml without it); config key gpu.sharing-config"},
		&cli.StringFlag{Name: "gpu-driver-root", Aliases: []string{"nvidia-driver-root"}, Category: catGPU, Value: "/", Destination: &g.DriverRoot,
			Usage: "where the NVIDIA driver's files are installed"},
		&cli.StringFlag{Name: "default-runtime", Category: catGPU, Destination: &g.DefaultRuntime,
			Usage: "containerd runtime for pods without a RuntimeClass: runc (default), nvidia, nvidia-cdi, nvidia-experimental"},
		&cli.IntFlag{Name: "gpu-metrics-port", Category: catGPU, Value: 9401, Destination: &g.MetricsPort,
			Usage: "port of the GPU metrics endpoint (Prometheus text, dcgm-exporter names); 0 disables it"},
		&cli.BoolFlag{Name: "gpu-metrics-anonymous", Category: catGPU, Destination: &g.MetricsAnonymous,
			Usage: "serve the GPU metrics to anyone over plain HTTP, as dcgm-exporter does (default: HTTPS, callers the apiserver authenticates and allows to get /metrics)"},
		&cli.StringFlag{Name: "gpu-cdi-dir", Category: catGPU, Value: "/var/run/cdi", Destination: &g.CDIDir,
			Usage: "where the GPU CDI spec is written"},
		&cli.StringFlag{Name: "gpu-mock", Category: catGPU, Hidden: true, Destination: &g.Mock,
			Usage: "test only: use go-nvml's mock of this machine (dgxa100) instead of the driver"},
		&cli.StringFlag{Name: "gpu-dev-root", Category: catGPU, Hidden: true, Value: "/", Destination: &g.DevRoot,
			Usage: "test only: root holding the /dev nodes of the GPUs"},
		&cli.DurationFlag{Name: "gpu-health-quiet", Category: catGPU, Hidden: true, Value: time.Minute, Destination: &g.HealthQuiet,
			Usage: "how long an unhealthy GPU must stay quiet before a passing re-probe restores it"},
	}
}
