package server

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/outpostk8s/outpost/pkg/control/renewer"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// writeCredentials creates the PKI and every kubeconfig; existing valid files are kept.
func (s *Server) writeCredentials() error {
	b, err := pki.EnsureCluster(s.clusterSpec())
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	s.pki = b
	return s.writeKubeconfigs()
}

func (s *Server) clusterSpec() pki.ClusterSpec {
	c := s.Cfg.Control
	return pki.ClusterSpec{Dir: c.Dirs.TLS(), DNSNames: c.SANs.DNS, IPs: c.SANs.IPs,
		NodeName: c.NodeName, NodeIP: c.NodeIP, LeafLifetime: c.LeafLifetime}
}

// writeKubeconfigs: the in-process clients' name the certificate files, which they reload
// when renewed; the admin kubeconfig for people embeds its certificate (it is copied to
// other machines) and is rewritten when that is renewed. The node's are written even under
// --disable-agent: a later start with a node finds them.
func (s *Server) writeKubeconfigs() error {
	c := s.Cfg.Control
	url := fmt.Sprintf("https://127.0.0.1:%d", c.HTTPSPort)
	caFile := c.Dirs.ServerCAFile()
	for _, k := range []struct{ path, name string }{
		{c.Dirs.AdminKubeconfig(), pki.Admin},
		{c.Dirs.ControllerKubeconfig(), pki.ControllerManager},
		{c.Dirs.SchedulerKubeconfig(), pki.Scheduler},
		{c.Dirs.SupervisorKubeconfig(), pki.Supervisor},
		{c.Dirs.MetricsServerKubeconfig(), pki.MetricsServer},
		{c.Dirs.ServiceLBKubeconfig(), pki.ServiceLB},
		{c.Dirs.HelmKubeconfig(), pki.Helm},
		{c.Dirs.KubeletKubeconfig(), pki.Kubelet},
		{c.Dirs.KubeProxyKubeconfig(), pki.KubeProxy},
	} {
		if err := pki.KubeconfigFiles(k.path, url, caFile, c.Dirs.TLS(), k.name); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o700); err != nil {
		return fmt.Errorf("kubeconfig dir: %w", err)
	}
	return pki.Kubeconfig(c.Kubeconfig, url, s.pki.ServerCA.CertPEM, c.Dirs.TLS(), pki.Admin, c.KubeconfigMode)
}

// renewer re-issues the server's certificates that are due while it runs.
func (s *Server) renewer() *renewer.Renewer {
	return &renewer.Renewer{Dirs: []string{s.Cfg.Control.Dirs.TLS()}, Interval: pki.CheckInterval(s.leafLifetime()),
		Log: s.Log.With("component", "server-certificates"),
		Renew: func() ([]string, error) {
			b, err := pki.EnsureCluster(s.clusterSpec())
			if err != nil {
				return nil, err
			}
			if !s.Cfg.Control.Etcd {
				return b.Renewed, nil
			}
			// etcd reads its certificate files at each handshake: renewed ones apply at once.
			e, err := pki.EnsureEtcd(s.etcdSpec())
			return append(b.Renewed, e...), err
		},
		Written: s.writeKubeconfigs}
}

func (s *Server) leafLifetime() time.Duration {
	if s.Cfg.Control.LeafLifetime > 0 {
		return s.Cfg.Control.LeafLifetime
	}
	return pki.DefaultLeafLifetime
}
