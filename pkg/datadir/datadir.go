// Package datadir names every path Outpost uses under its data and runtime dirs, so no other
// package builds paths by hand, and guards a data dir against two servers at once.
package datadir

import "path/filepath"

// Default locations; each is overridable by flag.
const (
	DefaultDataDir    = "/var/lib/outpost"
	DefaultRuntimeDir = "/run/outpost"
	DefaultConfigFile = "/etc/outpost/config.yaml"
	DefaultKubeconfig = "/etc/outpost/outpost.yaml"
)

// Dirs is the root of every path. Only Data and Runtime are chosen; the rest derive.
type Dirs struct {
	Data    string
	Runtime string
}

func (d Dirs) p(elem ...string) string { return filepath.Join(append([]string{d.Data}, elem...)...) }

// Lock guards the data dir against a second server or agent.
func (d Dirs) Lock() string { return d.p(".lock") }

// The control plane's: DATA/server.

func (d Dirs) DBFile() string { return d.p("server", "db", "state.db") }

// Snapshots is the default snapshot dir; RestoreMarker records the snapshot a
// --cluster-reset restored, so a restart with the same flags does not restore it again.
func (d Dirs) Snapshots() string     { return d.p("server", "db", "snapshots") }
func (d Dirs) EtcdDataDir() string   { return d.p("server", "db", "etcd") }
func (d Dirs) EtcdTLS() string       { return d.p("server", "tls", "etcd") }
func (d Dirs) RestoreMarker() string { return d.p("server", "db", "restored-from") }
func (d Dirs) ServerDir() string     { return d.p("server") }
func (d Dirs) TLS() string           { return d.p("server", "tls") }

// PolicyMarker names the Kubernetes version whose apiserver last passed its whole /readyz on
// this datastore: its default RBAC policy and system PriorityClasses are in it.
func (d Dirs) PolicyMarker() string { return d.p("server", "db", "policy-version") }

// ServerCAFile is the cluster's server CA: what tokens pin.
func (d Dirs) ServerCAFile() string { return d.p("server", "tls", "server-ca.crt") }
func (d Dirs) Manifests() string    { return d.p("server", "manifests") }
func (d Dirs) HelmCache() string    { return d.p("server", "helm") }

// Static holds files the apiserver serves under /static/ (charts/ for HelmCharts).
func (d Dirs) Static() string { return d.p("server", "static") }

// APIServerConf holds the apiserver's generated config files (authentication).
func (d Dirs) APIServerConf() string { return d.p("server", "etc") }

// The in-process clients' kubeconfigs. AdminKubeconfig is the server's own admin client (the
// in-process one, naming cert files; people get the one --write-kubeconfig names).
func (d Dirs) AdminKubeconfig() string      { return d.p("server", "cred", "admin.kubeconfig") }
func (d Dirs) ControllerKubeconfig() string { return d.p("server", "cred", "controller.kubeconfig") }
func (d Dirs) SchedulerKubeconfig() string  { return d.p("server", "cred", "scheduler.kubeconfig") }
func (d Dirs) SupervisorKubeconfig() string { return d.p("server", "cred", "supervisor.kubeconfig") }

// ServiceLBKubeconfig is the in-process service load balancer's identity.
func (d Dirs) ServiceLBKubeconfig() string { return d.p("server", "cred", "servicelb.kubeconfig") }

// HelmKubeconfig is the Helm controller's identity (system:outpost-helm).
func (d Dirs) HelmKubeconfig() string { return d.p("server", "cred", "helm.kubeconfig") }

// MetricsServerKubeconfig is the in-process metrics-server's identity.
func (d Dirs) MetricsServerKubeconfig() string {
	return d.p("server", "cred", "metrics-server.kubeconfig")
}

// TokenFile holds the cluster join token, which servers join with.
func (d Dirs) TokenFile() string { return d.p("server", "token") }

// AgentTokenFile holds the token agents join with.
func (d Dirs) AgentTokenFile() string { return d.p("server", "agent-token") }

// EncryptionConfig is the apiserver's Secrets encryption config, with its keys.
func (d Dirs) EncryptionConfig() string { return d.p("server", "cred", "encryption-config.json") }

// RuntimeClassesManifest is where servers before the RuntimeClass controller wrote the NVIDIA
// RuntimeClasses their own node found; the controller removes it.
func (d Dirs) RuntimeClassesManifest() string {
	return d.p("server", "manifests", "gpu-runtimeclasses.yaml")
}

// The node's: DATA/agent.

// AgentTLS holds an agent's credentials from its join; AgentServerCAFile is the CA it pinned.
func (d Dirs) AgentTLS() string          { return d.p("agent", "tls") }
func (d Dirs) AgentServerCAFile() string { return d.p("agent", "tls", "server-ca.crt") }
func (d Dirs) Images() string            { return d.p("agent", "images") }

// ImagesRecord keeps what was imported from image archives without digests.
func (d Dirs) ImagesRecord() string { return d.p("agent", "images-imported.json") }

// Storage is local-path volumes' default home (--default-local-storage-path).
func (d Dirs) Storage() string             { return d.p("storage") }
func (d Dirs) ContainerdRoot() string      { return d.p("agent", "containerd") }
func (d Dirs) ContainerdConfig() string    { return d.p("agent", "etc", "containerd", "config.toml") }
func (d Dirs) RegistryHosts() string       { return d.p("agent", "etc", "containerd", "certs.d") }
func (d Dirs) CNIConfDir() string          { return d.p("agent", "etc", "cni", "net.d") }
func (d Dirs) CNINetworks() string         { return d.p("agent", "cni", "networks") }
func (d Dirs) FlannelDir() string          { return d.p("agent", "etc", "flannel") }
func (d Dirs) KubeletConfig() string       { return d.p("agent", "etc", "kubelet.yaml") }
func (d Dirs) KubeProxyConfig() string     { return d.p("agent", "etc", "kube-proxy.yaml") }
func (d Dirs) KubeletKubeconfig() string   { return d.p("agent", "kubelet.kubeconfig") }
func (d Dirs) KubeProxyKubeconfig() string { return d.p("agent", "kubeproxy.kubeconfig") }
func (d Dirs) GPUInjectFile() string       { return d.p("agent", "gpu-mock-inject") }
func (d Dirs) GPUMockState() string        { return d.p("agent", "gpu-mock-state.json") }

// Payload is where bundled binaries are unpacked, one folder per payload hash; BinDir is the
// running version's.
func (d Dirs) Payload() string { return d.p("data") }
func (d Dirs) BinDir() string  { return d.p("data", "current", "bin") }

// The runtime dir's.

func (d Dirs) RuntimeContainerd() string { return filepath.Join(d.Runtime, "containerd") }
func (d Dirs) ContainerdSocket() string {
	return filepath.Join(d.Runtime, "containerd", "containerd.sock")
}

// StatusSocket answers `outpost status` (pkg/status).
func (d Dirs) StatusSocket() string { return filepath.Join(d.Runtime, "status.sock") }

func (d Dirs) KineSocket() string { return filepath.Join(d.Runtime, "kine.sock") }
