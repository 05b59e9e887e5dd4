// Package kubeproxy renders kube-proxy's configuration for this host; the upstream kube-proxy
// runs in-process (pkg/node/upstream).
package kubeproxy

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/outpostk8s/outpost/pkg/args"
)

// Config is kube-proxy's slice of the node config.
type Config struct {
	NodeName    string
	ConfigFile  string
	Kubeconfig  string
	ClusterCIDR string
	// MasqueradeAll when bridged traffic skips iptables (no br_netfilter): a same-node reply
	// would otherwise bypass the un-DNAT and be dropped by the client.
	MasqueradeAll bool
	Verbosity     int
	Extra         []string
}

// Render returns the KubeProxyConfiguration file.
func Render(c Config) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "iptables",
		"clientConnection":   map[string]any{"kubeconfig": c.Kubeconfig},
		"clusterCIDR":        c.ClusterCIDR,
		"hostnameOverride":   c.NodeName,
		"healthzBindAddress": "127.0.0.1:10256",
		"metricsBindAddress": "127.0.0.1:10249",
		// Leave the host's conntrack sysctls alone: containers and LXC hosts refuse the writes.
		"conntrack": map[string]any{"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
		"iptables":  map[string]any{"masqueradeAll": c.MasqueradeAll},
		"logging":   map[string]any{"format": "outpost"}, // registered by pkg/logging
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy config: %w", err)
	}
	return b, nil
}

// Args is kube-proxy's argv.
func Args(c Config) ([]string, error) {
	return args.Build(map[string]string{"config": c.ConfigFile, "v": fmt.Sprint(c.Verbosity)}, c.Extra)
}
