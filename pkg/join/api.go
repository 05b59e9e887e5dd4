// Package join is how an agent becomes a node of a cluster. The server serves two paths on its
// apiserver port: the server CA (anyone may fetch it; the agent trusts it only if it hashes to
// the pin in its token) and the join call, authenticated by the token's secret. On a join the
// server signs the certificates for keys the agent made (the CA keys never leave the server)
// and returns the cluster settings. A node password, kept by the agent and hashed by the
// server, binds a node name to the machine that first took it.
package join

import (
	"net"

	"github.com/outpostk8s/outpost/pkg/cluster"
)

// Paths on the server. The apiserver lets anonymous requests reach the first two; the join
// handler checks the token itself. RenewPath is for joined nodes: the apiserver authenticates
// their client certificate and RBAC lets the system:nodes group post to it.
const (
	CACertsPath = "/v1-outpost/cacerts"
	JoinPath    = "/v1-outpost/join"
	RenewPath   = "/v1-outpost/renew"
)

// TokenHeader carries the token. Not Authorization: the apiserver would try the token as its
// own credential and refuse the request before the join handler sees it.
const TokenHeader = "X-Outpost-Token"

// Request is what the agent sends. CSRs are PEM.
type Request struct {
	NodeName     string `json:"nodeName"`
	NodeIP       string `json:"nodeIP"`
	NodePassword string `json:"nodePassword"`
	KubeletCSR   string `json:"kubeletCSR"` // client: system:node:<name>
	ServingCSR   string `json:"servingCSR"` // the kubelet's serving certificate
	ProxyCSR     string `json:"proxyCSR"`   // kube-proxy's client certificate
}

// Response carries the signed certificates (PEM) and the settings. ServerCA is informational:
// an agent trusts only the CA its token pins.
type Response struct {
	KubeletCert string           `json:"kubeletCert"`
	ServingCert string           `json:"servingCert"`
	ProxyCert   string           `json:"proxyCert"`
	ServerCA    string           `json:"serverCA"`
	ClientCA    string           `json:"clientCA"`
	Settings    cluster.Settings `json:"settings"`
	// Warnings the agent should log (its node IP is not where its request came from).
	Warnings []string `json:"warnings,omitempty"`
}

// Failure reasons the server answers with, so the agent can name the problem.
const (
	ReasonBadRequest   = "BadRequest"
	ReasonTokenUnknown = "TokenUnknown"
	ReasonTokenExpired = "TokenExpired"
	ReasonNodeTaken    = "NodeNameTaken"
	ReasonNotNode      = "NotANode"
	ReasonTooMany      = "TooManyAttempts"
	ReasonUnavailable  = "Unavailable"
	ReasonInternal     = "Internal"
)

// Failure is the body of a refused join.
type Failure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	detail  string // for the server's log only
}

func validIP(s string) bool { return net.ParseIP(s) != nil }
