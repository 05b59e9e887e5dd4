package join

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Handler serves CACertsPath, JoinPath and RenewPath.
type Handler struct {
	ServerCA  *pki.CA // its certificate is what CACertsPath answers
	ClientCA  *pki.CA // signs client certificates and checks a renewing node's
	KubeletCA *pki.CA // signs kubelet serving certificates
	CheckAuth func(ctx context.Context, t token.Token) error
	Passwords Passwords
	Settings  cluster.Settings
	// Reserved are names a node may not take: the apiserver's.
	Reserved []string
	// Own is the server's own node name ("" without a node): no join or renewal may take it.
	Own     string
	Limiter *Limiter
	Log     *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case CACertsPath:
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(h.ServerCA.CertPEM)
	case JoinPath, RenewPath:
		if r.Method != http.MethodPost {
			fail(w, http.StatusMethodNotAllowed, ReasonBadRequest, "POST only")
			return
		}
		from := sourceIP(r.RemoteAddr)
		var resp *Response
		var status int
		var f *Failure
		if r.URL.Path == JoinPath {
			// Only the anonymous path is limited: renewals come authenticated by the
			// apiserver, and a shared address must not lock joined nodes out.
			done, ok := h.Limiter.Begin(from)
			if !ok {
				fail(w, http.StatusTooManyRequests, ReasonTooMany, "too many failed attempts from "+from+": wait a minute")
				return
			}
			resp, status, f = h.join(r)
			done(f != nil && status != http.StatusServiceUnavailable && status != http.StatusInternalServerError)
		} else {
			resp, status, f = h.renew(r)
		}
		if f != nil {
			if h.Log != nil {
				h.Log.Warn("join refused", "path", r.URL.Path, "from", r.RemoteAddr, "reason", f.Reason, "message", f.Message, "detail", f.detail)
			}
			fail(w, status, f.Reason, f.Message)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	default:
		http.NotFound(w, r)
	}
}

func fail(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Failure{Reason: reason, Message: msg})
}

func refuse(status int, reason, format string, a ...any) (*Response, int, *Failure) {
	return nil, status, &Failure{Reason: reason, Message: fmt.Sprintf(format, a...)}
}

// apiFailure turns an error from the cluster into a refusal: a server still starting (RBAC
// not applied yet, apiserver not ready) is worth a retry.
func apiFailure(what string, err error) (*Response, int, *Failure) {
	if apierrors.IsForbidden(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) {
		return refuse(http.StatusServiceUnavailable, ReasonUnavailable, "server is starting (%s): try again", what)
	}
	// The detail goes to the server's log (ServeHTTP logs refusals), not to the caller.
	_, status, f := refuse(http.StatusInternalServerError, ReasonInternal, "%s failed on the server: see its log", what)
	f.detail = err.Error()
	return nil, status, f
}

// genericRefusal is all an anonymous caller learns of a token that is not accepted: not
// whether the ID exists or the secret was wrong.
const genericRefusal = "token not accepted: use the token in the server's /var/lib/outpost/server/token or one from `outpost token create`"

func (h *Handler) join(r *http.Request) (*Response, int, *Failure) {
	ctx := r.Context()
	t, err := token.Parse(r.Header.Get(TokenHeader))
	if err != nil {
		return refuse(http.StatusUnauthorized, ReasonTokenUnknown, genericRefusal)
	}
	if err := h.CheckAuth(ctx, t); err != nil {
		switch {
		case errors.Is(err, token.ErrExpired): // told only to a caller who knew the secret
			return refuse(http.StatusUnauthorized, ReasonTokenExpired, "%v", err)
		case errors.Is(err, token.ErrUnknown):
			return refuse(http.StatusUnauthorized, ReasonTokenUnknown, genericRefusal)
		}
		return apiFailure("check token", err)
	}
	req, status, f := h.decode(r)
	if f != nil {
		return nil, status, f
	}
	if f := h.own(req.NodeName); f != nil {
		return nil, http.StatusConflict, f
	}
	if err := h.Passwords.Verify(ctx, req.NodeName, req.NodePassword); err != nil {
		if errors.Is(err, ErrNodeTaken) {
			return refuse(http.StatusConflict, ReasonNodeTaken, "%v", err)
		}
		return apiFailure("node password", err)
	}
	resp, status, f := h.sign(r, req)
	if f == nil && h.Log != nil {
		h.Log.Info("node joined", "node", req.NodeName, "ip", sourceIP(r.RemoteAddr), "token", t.ID)
	}
	return resp, status, f
}

// renew re-issues a joined node's certificates without a token: the node proves itself with
// its current client certificate (checked here against the client CA, whatever the apiserver
// in front did) and its node password.
func (h *Handler) renew(r *http.Request) (*Response, int, *Failure) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return refuse(http.StatusUnauthorized, ReasonNotNode, "no client certificate: renewing needs the node's current one")
	}
	pool := x509.NewCertPool()
	pool.AddCert(h.ClientCA.Cert)
	peer := r.TLS.PeerCertificates[0]
	if _, err := peer.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return refuse(http.StatusUnauthorized, ReasonNotNode, "client certificate not accepted (%v): join again with a token", err)
	}
	req, status, f := h.decode(r)
	if f != nil {
		return nil, status, f
	}
	if peer.Subject.CommonName != "system:node:"+req.NodeName || !slices.Contains(peer.Subject.Organization, "system:nodes") {
		return refuse(http.StatusForbidden, ReasonNotNode, "client certificate of %q may not renew node %q", peer.Subject.CommonName, req.NodeName)
	}
	if f := h.own(req.NodeName); f != nil {
		return nil, http.StatusConflict, f
	}
	if err := h.Passwords.Check(r.Context(), req.NodeName, req.NodePassword); err != nil {
		switch {
		case errors.Is(err, ErrNodeTaken):
			return refuse(http.StatusConflict, ReasonNodeTaken, "%v", err)
		case errors.Is(err, ErrNoRecord):
			return refuse(http.StatusForbidden, ReasonNotNode, "%v", err)
		}
		return apiFailure("node password", err)
	}
	resp, status, f := h.sign(r, req)
	if f == nil && h.Log != nil {
		h.Log.Info("node renewed its certificates", "node", req.NodeName, "ip", sourceIP(r.RemoteAddr))
	}
	return resp, status, f
}

// own refuses the server's own node name: it is bound to the server's machine, and a server
// must never find its node taken by a join.
func (h *Handler) own(node string) *Failure {
	if h.Own == "" || node != h.Own {
		return nil
	}
	return &Failure{Reason: ReasonNodeTaken, Message: fmt.Sprintf("node name %q is the server's own node: give this machine another name (--node-name)", node)}
}

// decode reads and checks the request body; errors name the field.
func (h *Handler) decode(r *http.Request) (*Request, int, *Failure) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&req); err != nil {
		_, s, f := refuse(http.StatusBadRequest, ReasonBadRequest, "request body: %v", err)
		return nil, s, f
	}
	if err := CheckRequest(req, h.Reserved); err != nil {
		_, s, f := refuse(http.StatusBadRequest, ReasonBadRequest, "%v", err)
		return nil, s, f
	}
	return &req, 0, nil
}

// CheckRequest validates what an agent sent, before anything is looked up or signed.
func CheckRequest(req Request, reserved []string) error {
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return fmt.Errorf("node name %q: %s", req.NodeName, strings.Join(errs, "; "))
	}
	if slices.Contains(reserved, req.NodeName) || strings.HasPrefix(req.NodeName, "kubernetes.default.") {
		return fmt.Errorf("node name %q is a name of the API server: choose another --node-name", req.NodeName)
	}
	if !validIP(req.NodeIP) {
		return fmt.Errorf("node IP %q is not an IP address", req.NodeIP)
	}
	if len(req.NodePassword) < 16 || len(req.NodePassword) > 256 {
		return errors.New("node password must be 16 to 256 characters")
	}
	for _, c := range []struct{ name, pem string }{{"kubelet CSR", req.KubeletCSR}, {"serving CSR", req.ServingCSR}, {"kube-proxy CSR", req.ProxyCSR}} {
		if _, err := parseCSR(c.pem); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// sign issues the node's certificates and records on the node's password record that its
// serving certificate comes from the kubelet CA. That certificate names the node and only the
// address the request came from, whatever IP the agent claims.
func (h *Handler) sign(r *http.Request, req *Request) (*Response, int, *Failure) {
	kubelet, _ := parseCSR(req.KubeletCSR)
	serving, _ := parseCSR(req.ServingCSR)
	proxy, _ := parseCSR(req.ProxyCSR)
	from := net.ParseIP(sourceIP(r.RemoteAddr))
	ips := []net.IP{}
	if from != nil {
		ips = append(ips, from)
	}
	user := "system:node:" + req.NodeName
	resp := &Response{ServerCA: string(h.ServerCA.CertPEM), ClientCA: string(h.ClientCA.CertPEM), Settings: h.Settings}
	if from == nil || !from.Equal(net.ParseIP(req.NodeIP)) {
		msg := fmt.Sprintf("node IP %s is not the address %s the server sees this node at: the kubelet's serving certificate names only the latter, "+
			"so kubectl logs/exec to this node fail until --node-ip is the address the servers reach it at (no NAT between)", req.NodeIP, sourceIP(r.RemoteAddr))
		resp.Warnings = append(resp.Warnings, msg)
		if h.Log != nil {
			h.Log.Warn(msg, "node", req.NodeName)
		}
	}
	for _, s := range []struct {
		out  *string
		ca   *pki.CA
		pub  any
		spec pki.Spec
	}{
		{&resp.KubeletCert, h.ClientCA, kubelet.PublicKey, pki.Spec{CommonName: user, Organization: []string{"system:nodes"}, Client: true}},
		{&resp.ServingCert, h.KubeletCA, serving.PublicKey, pki.Spec{CommonName: user, Organization: []string{"system:nodes"},
			DNSNames: []string{req.NodeName}, IPs: ips, Server: true}},
		{&resp.ProxyCert, h.ClientCA, proxy.PublicKey, pki.Spec{CommonName: "system:kube-proxy", Client: true}},
	} {
		b, err := s.ca.SignPEM(s.pub, s.spec)
		if err != nil {
			return refuse(http.StatusInternalServerError, ReasonInternal, "sign: %v", err)
		}
		*s.out = string(b)
	}
	// Kubelets are verified without the server CA once every node's record says this. A
	// failure only keeps the server CA trusted until the node renews again: not worth a refusal.
	if err := h.Passwords.MarkKubeletServing(r.Context(), req.NodeName); err != nil && h.Log != nil {
		h.Log.Warn("the kubelet CA bundle keeps the server CA until this node renews again", "node", req.NodeName, "err", err)
	}
	return resp, http.StatusOK, nil
}

// parseCSR reads a PEM CSR and checks its self-signature (the agent holds the key).
func parseCSR(s string) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("bad signature: %w", err)
	}
	return csr, nil
}
