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

func (d Dirs) Server() string         { return d.p("server") }
func (d Dirs) DBDir() string          { return d.p("server", "db") }
func (d Dirs) DBFile() string         { return d.p("server", "db", "state.db") }
func (d Dirs) TLS() string            { return d.p("server", "tls") }
func (d Dirs) Cred() string           { return d.p("server", "cred") }
func (d Dirs) Manifests() string      { return d.p("server", "manifests") }
func (d Dirs) Agent() string          { return d.p("agent") }
func (d Dirs) AgentTLS() string       { return d.p("agent", "tls") }
func (d Dirs) Images() string         { return d.p("agent", "images") }
func (d Dirs) ContainerdRoot() string { return d.p("agent", "containerd") }
func (d Dirs) ContainerdConfig() string {
	return d.p("agent", "etc", "containerd", "config.toml")
}
func (d Dirs) CNIConfDir() string      { return d.p("agent", "etc", "cni", "net.d") }
func (d Dirs) KubeletConfig() string   { return d.p("agent", "etc", "kubelet.yaml") }
func (d Dirs) KubeProxyConfig() string { return d.p("agent", "etc", "kube-proxy.yaml") }
func (d Dirs) KubeletKubeconfig() string {
	return d.p("agent", "kubelet.kubeconfig")
}
func (d Dirs) KubeProxyKubeconfig() string { return d.p("agent", "kubeproxy.kubeconfig") }
func (d Dirs) Logs() string                { return d.p("agent", "logs") }

// Payload is where bundled binaries are unpacked, one folder per payload hash.
func (d Dirs) Payload() string           { return d.p("data") }
func (d Dirs) PayloadCurrent() string    { return d.p("data", "current") }
func (d Dirs) BinDir() string            { return d.p("data", "current", "bin") }
func (d Dirs) Lock() string              { return d.p(".lock") }
func (d Dirs) RuntimeContainerd() string { return filepath.Join(d.Runtime, "containerd") }
func (d Dirs) ContainerdSocket() string {
	return filepath.Join(d.Runtime, "containerd", "containerd.sock")
}
func (d Dirs) KineSocket() string { return filepath.Join(d.Runtime, "kine.sock") }

// AdminKubeconfig is the server's own admin client (the in-process one, naming cert files).
func (d Dirs) AdminKubeconfig() string { return d.p("server", "cred", "admin.kubeconfig") }

// TokenFile holds the cluster join token.
func (d Dirs) TokenFile() string { return d.p("server", "token") }

// EncryptionConfig is the apiserver's Secrets encryption config, with its keys.
func (d Dirs) EncryptionConfig() string { return d.p("server", "cred", "encryption-config.json") }
