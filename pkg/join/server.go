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
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Handler serves CACertsPath and JoinPath.
type Handler struct {
	ServerCA  *pki.CA // signs serving certificates
	ClientCA  *pki.CA // signs client certificates
	CheckAuth func(ctx context.Context, t token.Token) error
	Passwords Passwords
	Settings  Settings
	Log       *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case CACertsPath:
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(h.ServerCA.CertPEM)
	case JoinPath:
		if r.Method != http.MethodPost {
			fail(w, http.StatusMethodNotAllowed, ReasonBadRequest, "POST only")
			return
		}
		resp, status, f := h.join(r)
		if f != nil {
			if h.Log != nil {
				h.Log.Warn("join refused", "from", r.RemoteAddr, "reason", f.Reason, "message", f.Message)
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

func (h *Handler) join(r *http.Request) (*Response, int, *Failure) {
	ctx := r.Context()
	presented := r.Header.Get(TokenHeader)
	if presented == "" {
		return refuse(http.StatusUnauthorized, ReasonTokenUnknown, "no token presented")
	}
	t, err := token.Parse(presented)
	if err != nil {
		return refuse(http.StatusUnauthorized, ReasonTokenUnknown, "%v", err)
	}
	if err := h.CheckAuth(ctx, t); err != nil {
		if errors.Is(err, token.ErrExpired) {
			return refuse(http.StatusUnauthorized, ReasonTokenExpired, "%v", err)
		}
		if errors.Is(err, token.ErrUnknown) {
			return refuse(http.StatusUnauthorized, ReasonTokenUnknown, "%v", err)
		}
		return refuse(http.StatusInternalServerError, ReasonInternal, "check token: %v", err)
	}
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&req); err != nil {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "request body: %v", err)
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "node name %q: %s", req.NodeName, strings.Join(errs, "; "))
	}
	if !validIP(req.NodeIP) {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "node IP %q is not an IP address", req.NodeIP)
	}
	if len(req.NodePassword) < 16 {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "node password too short")
	}
	kubelet, err := parseCSR(req.KubeletCSR)
	if err != nil {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "kubelet CSR: %v", err)
	}
	serving, err := parseCSR(req.ServingCSR)
	if err != nil {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "serving CSR: %v", err)
	}
	proxy, err := parseCSR(req.ProxyCSR)
	if err != nil {
		return refuse(http.StatusBadRequest, ReasonBadRequest, "kube-proxy CSR: %v", err)
	}
	if err := h.Passwords.Verify(ctx, req.NodeName, req.NodePassword); err != nil {
		if errors.Is(err, ErrNodeTaken) {
			return refuse(http.StatusConflict, ReasonNodeTaken, "%v", err)
		}
		return refuse(http.StatusInternalServerError, ReasonInternal, "node password: %v", err)
	}
	user := "system:node:" + req.NodeName
	resp := &Response{ServerCA: string(h.ServerCA.CertPEM), ClientCA: string(h.ClientCA.CertPEM), Settings: h.Settings}
	for _, s := range []struct {
		out  *string
		ca   *pki.CA
		pub  any
		spec pki.Spec
	}{
		{&resp.KubeletCert, h.ClientCA, kubelet.PublicKey, pki.Spec{CommonName: user, Organization: []string{"system:nodes"}, Client: true}},
		{&resp.ServingCert, h.ServerCA, serving.PublicKey, pki.Spec{CommonName: user, Organization: []string{"system:nodes"},
			DNSNames: []string{req.NodeName}, IPs: []net.IP{net.ParseIP(req.NodeIP)}, Server: true}},
		{&resp.ProxyCert, h.ClientCA, proxy.PublicKey, pki.Spec{CommonName: "system:kube-proxy", Client: true}},
	} {
		b, err := s.ca.SignPEM(s.pub, s.spec)
		if err != nil {
			return refuse(http.StatusInternalServerError, ReasonInternal, "sign: %v", err)
		}
		*s.out = string(b)
	}
	if h.Log != nil {
		h.Log.Info("node joined", "node", req.NodeName, "ip", req.NodeIP, "token", t.ID)
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
