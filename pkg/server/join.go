package server

import (
	"context"
	"net/http"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/token"
)

// joinHandlers serves the join API on the apiserver port. The cluster token (the file) is
// checked in memory; extra tokens are looked up as bootstrap-token Secrets.
func (s *Server) joinHandlers(client kubernetes.Interface) map[string]http.Handler {
	c := s.Cfg
	store := token.Store{Client: client}
	h := &join.Handler{ServerCA: s.pki.ServerCA, ClientCA: s.pki.ClientCA, Passwords: join.Passwords{Client: client},
		Log: s.Log.With("component", "join"),
		Settings: join.Settings{ClusterCIDR: c.ClusterCIDR.String(), ServiceCIDR: c.ServiceCIDR.String(),
			ClusterDNS: c.ClusterDNS.String(), ClusterDomain: c.ClusterDomain, FlannelBackend: c.FlannelBackend},
		CheckAuth: func(ctx context.Context, t token.Token) error {
			if s.token.Matches(t) {
				return nil
			}
			return store.Check(ctx, t)
		}}
	return map[string]http.Handler{join.CACertsPath: h, join.JoinPath: h}
}
