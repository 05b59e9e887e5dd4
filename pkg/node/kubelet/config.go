// Package kubelet renders the kubelet's configuration file and argv for this host; the
// upstream kubelet itself runs in-process (see Run in run.go).
package kubelet

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/outpostk8s/outpost/pkg/args"
)

// Config is the kubelet's slice of the node config.
type Config struct {
	NodeName         string
	NodeIP           net.IP
	ConfigFile       string
	Kubeconfig       string
	ClientCAFile     string
	TLSCertFile      string
	TLSKeyFile       string
	RuntimeSocket    string
	ClusterDNS       net.IP
	ClusterDomain    string
	ResolvConf       string
	CgroupV2         bool
	Verbosity        int
	Extra            []string
	NodeLabels       []string
	ImageCredentials string
}

// Render returns the KubeletConfiguration file.
func Render(c Config) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"address":    "0.0.0.0",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true, "cacheTTL": "2m"},
			"x509":      map[string]any{"clientCAFile": c.ClientCAFile},
		},
		"authorization":            map[string]any{"mode": "Webhook"},
		"cgroupDriver":             "cgroupfs", // no systemd is assumed to run
		"clusterDNS":               []string{c.ClusterDNS.String()},
		"clusterDomain":            c.ClusterDomain,
		"containerRuntimeEndpoint": "unix://" + c.RuntimeSocket,
		"failSwapOn":               false,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              10248,
		"readOnlyPort":             0,
		"resolvConf":               c.ResolvConf,
		"serializeImagePulls":      false,
		"tlsCertFile":              c.TLSCertFile,
		"tlsPrivateKeyFile":        c.TLSKeyFile,
		// Small edge disks: the upstream 10%/15% would evict on a half-full 64 GB card.
		"evictionHard":              map[string]string{"imagefs.available": "5%", "nodefs.available": "5%"},
		"evictionMinimumReclaim":    map[string]string{"imagefs.available": "10%", "nodefs.available": "10%"},
		"nodeStatusReportFrequency": "1m",
		// "outpost" is registered by pkg/logging: klog lines come out tagged by component.
		"logging": map[string]any{"format": "outpost"},
	}
	if !c.CgroupV2 {
		// Kubernetes 1.35+ refuses cgroup v1 unless told; hybrid hosts are still common at the edge.
		cfg["failCgroupV1"] = false
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	return b, nil
}

// Args is the kubelet's deterministic argv.
func Args(c Config) ([]string, error) {
	d := map[string]string{
		"config":            c.ConfigFile,
		"kubeconfig":        c.Kubeconfig,
		"hostname-override": c.NodeName,
		"node-ip":           c.NodeIP.String(),
		"v":                 fmt.Sprint(c.Verbosity),
	}
	if len(c.NodeLabels) > 0 {
		d["node-labels"] = strings.Join(c.NodeLabels, ",")
	}
	return args.Build(d, c.Extra)
}

// ResolvConf picks the file pods inherit nameservers from: the host's, unless it only names a
// loopback resolver (systemd-resolved's stub), which would loop inside a pod.
func ResolvConf(root string) string {
	const hostFile, resolvedFile = "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"
	b, err := os.ReadFile(root + hostFile)
	if err != nil || !onlyLoopback(b) {
		return hostFile
	}
	if _, err := os.Stat(root + resolvedFile); err == nil {
		return resolvedFile
	}
	return hostFile
}

func onlyLoopback(b []byte) bool {
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			found = true
			if ip := net.ParseIP(f[1]); ip == nil || !ip.IsLoopback() {
				return false
			}
		}
	}
	return found
}
