package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/node/lb"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Join asks the server for this agent's credentials and the cluster settings. It writes
// nothing: a refused join leaves no trace (the caller then writes with Run). The returned
// config carries the cluster's settings in place of the agent's defaults.
//
// A machine that joined before renews with its node credentials (client certificate and
// node password), so an expired or deleted token does not keep it out; it starts on its stored
// credentials when no server answers. Otherwise it joins with the token.
func Join(ctx context.Context, cfg *config.Config) (*join.Result, *config.Config, error) {
	j := cfg.Join
	pw, fresh, err := join.NodePassword(j.PasswordFile)
	if err != nil {
		return nil, nil, err
	}
	client := join.Client{Servers: j.Servers, Token: j.Token}
	node := join.Node{Name: cfg.NodeName, IP: cfg.NodeIP.String(), Password: pw}
	var stored, res *join.Result
	if !fresh {
		// Stored credentials count only for the cluster the token pins.
		if st, serr := join.Stored(cfg.Dirs.AgentTLS()); serr == nil {
			if _, perr := join.PinnedCA(st.CAPEM, j.Token.CAHash); perr == nil {
				stored = st
			}
		}
	}
	var renewErr error
	if stored != nil {
		res, renewErr = client.Renew(ctx, stored, cfg.Dirs.AgentTLS(), node)
		if errors.Is(renewErr, join.ErrUnreachable) {
			// A power cut brought the agent back before any server: run on what it has.
			res, renewErr = stored, nil
			res.Node = node
		}
	}
	if res == nil {
		res, err = client.Fetch(ctx, node)
		if errors.Is(err, join.ErrUnreachable) && stored != nil {
			res, err = stored, nil
			res.Node = node
		}
		if err != nil {
			if renewErr != nil {
				return nil, nil, fmt.Errorf("%w (renewing with this machine's node credentials failed too: %v)", err, renewErr)
			}
			return nil, nil, err
		}
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
	if !config.IsDNSName(st.ClusterDomain) {
		return nil, nil, fmt.Errorf("server sent cluster domain %q, which is not a DNS name", st.ClusterDomain)
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
	// The kubeconfigs name the files: the renewer replaces them while the node runs.
	caFile := filepath.Join(c.Dirs.AgentTLS(), pki.ServerCA+".crt")
	for _, k := range []struct{ path, name string }{
		{c.Dirs.KubeletKubeconfig(), pki.Kubelet},
		{c.Dirs.KubeProxyKubeconfig(), pki.KubeProxy},
	} {
		if err := pki.KubeconfigFiles(k.path, "https://"+LBAddress, caFile, c.Dirs.AgentTLS(), k.name); err != nil {
			return err
		}
	}
	return nil
}

// agentRenewer renews the agent's certificates from the servers while it runs.
func (s *Server) agentRenewer() *join.Renewer {
	c := s.Cfg
	return &join.Renewer{Client: join.Client{Servers: c.Join.Servers, Token: c.Join.Token},
		Node: s.Joined.Node, Dir: c.Dirs.AgentTLS(), Log: s.Log.With("component", "certificates")}
}
