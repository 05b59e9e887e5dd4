package server

import (
	"context"
	"net/http"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/token"
)

// joinHandlers serves the join API on the apiserver port, and names the paths anonymous
// callers may reach. An agent joins with the agent token, the cluster token or an extra
// token; the first two are read from their files (so `outpost token rotate` applies at once),
// extra tokens are looked up as bootstrap-token Secrets.
func (s *Server) joinHandlers(client kubernetes.Interface) (map[string]http.Handler, []string) {
	c := s.Cfg.Control
	store := token.Store{Client: client}
	h := &join.Handler{ServerCA: s.pki.ServerCA, ClientCA: s.pki.ClientCA, KubeletCA: s.pki.KubeletCA,
		Passwords: join.Passwords{Client: client}, Limiter: &join.Limiter{},
		Reserved: reservedNames(c.SANs.DNS, c.NodeName), Own: c.OwnNode,
		Log: s.Log.With("component", "join"), Settings: c.Cluster,
		CheckAuth: func(ctx context.Context, t token.Token) error {
			return token.CheckAny(ctx, t, []*token.File{s.agentToken, s.token}, store)
		}}
	return map[string]http.Handler{join.CACertsPath: h, join.JoinPath: h, join.RenewPath: h},
		[]string{join.CACertsPath, join.JoinPath}
}

// reservedNames are the apiserver's DNS names, which no node may take. The server's own node
// name is one of them but stays a node name: the node-password binding guards it.
func reservedNames(sans []string, own string) []string {
	out := []string{"localhost"}
	for _, n := range sans {
		if n != own {
			out = append(out, n)
		}
	}
	return out
}
