package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/node/lb"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Join asks the server for this agent's credentials and the cluster settings. It writes
// nothing: a refused join leaves no trace (the caller then writes with Run). The returned
// config carries the cluster's settings in place of the agent's defaults.
func Join(ctx context.Context, cfg *config.Config) (*join.Result, *config.Config, error) {
	j := cfg.Join
	pw, fresh, err := join.NodePassword(j.PasswordFile)
	if err != nil {
		return nil, nil, err
	}
	res, err := join.Client{Servers: j.Servers, Token: j.Token}.Fetch(ctx, join.Node{Name: cfg.NodeName, IP: cfg.NodeIP.String(), Password: pw})
	if errors.Is(err, join.ErrUnreachable) && !fresh {
		// A node that joined before keeps running on its credentials while no server answers
		// (a power cut brought the agent back first); a machine that never joined stops here.
		if st, serr := join.Stored(cfg.Dirs.AgentTLS()); serr == nil {
			res, err = st, nil
		}
	}
	if err != nil {
		return nil, nil, err
	}
	out := *cfg
	st := res.Settings
	if _, out.ClusterCIDR, err = net.ParseCIDR(st.ClusterCIDR); err != nil {
		return nil, nil, fmt.Errorf("server sent cluster CIDR %q: %w", st.ClusterCIDR, err)
	}
	if _, out.ServiceCIDR, err = net.ParseCIDR(st.ServiceCIDR); err != nil {
		return nil, nil, fmt.Errorf("server sent service CIDR %q: %w", st.ServiceCIDR, err)
	}
	if out.ClusterDNS = net.ParseIP(st.ClusterDNS); out.ClusterDNS == nil {
		return nil, nil, fmt.Errorf("server sent cluster DNS %q: not an IP", st.ClusterDNS)
	}
	out.ClusterDomain = st.ClusterDomain
	if !slices.Contains(config.FlannelBackends, st.FlannelBackend) {
		return nil, nil, fmt.Errorf("server sent flannel backend %q, which this agent does not know: upgrade it to the server's version", st.FlannelBackend)
	}
	out.FlannelBackend = st.FlannelBackend
	if fresh && !res.FromStore() {
		if err := join.SaveNodePassword(j.PasswordFile, pw); err != nil {
			return nil, nil, err
		}
	}
	return res, &out, nil
}

// LBAddress is where an agent's kubelet, kube-proxy and flannel reach the servers: the
// agent's load balancer, which forwards to whichever server answers.
const LBAddress = "127.0.0.1:6444"

// loadBalancer forwards to the server that answered the join first, then the others.
func (s *Server) loadBalancer() (*lb.LB, error) {
	var hosts []string
	for _, u := range append([]string{s.Joined.Server}, s.Cfg.Join.Servers...) {
		p, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(hosts, p.Host) {
			hosts = append(hosts, p.Host)
		}
	}
	return &lb.LB{Listen: LBAddress, Servers: hosts, Log: s.Log.With("component", "load-balancer")}, nil
}

// writeJoined stores what the join gave: certificates and the node's kubeconfigs.
func (s *Server) writeJoined() error {
	c, j := s.Cfg, s.Joined
	if err := j.Write(c.Dirs.AgentTLS()); err != nil {
		return err
	}
	for _, k := range []struct{ path, name string }{
		{c.Dirs.KubeletKubeconfig(), pki.Kubelet},
		{c.Dirs.KubeProxyKubeconfig(), pki.KubeProxy},
	} {
		if err := pki.Kubeconfig(k.path, "https://"+LBAddress, j.CAPEM, c.Dirs.AgentTLS(), k.name, 0o600); err != nil {
			return err
		}
	}
	return nil
}
