// Package regproxy is the node's registry proxy for mirrors with rewrite rules (k3s's
// registries.yaml `rewrite`). Upstream containerd cannot rename a repository on the way to a
// mirror, so containerd asks this proxy on loopback, and the proxy asks the mirror endpoint
// under the rewritten name, with the endpoint's TLS settings and credentials. containerd still
// checks every digest, so the proxy cannot alter content unnoticed.
package regproxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/outpostk8s/outpost/pkg/node/registries"
	regspec "github.com/outpostk8s/outpost/pkg/spec/registries"
)

// Header carries the proxy's per-start secret, as a bearer token: only containerd, which
// reads it from its root-only hosts dir, can use the node's registry credentials through the
// proxy. Authorization is the header containerd leaves out of its debug logs.
const Header = "Authorization"

// maxTransports bounds the per-repository transports (each holds a bearer token).
const maxTransports = 256

// Proxy is the component. Its address exists after Init, which containerd's Init (later in
// the same phase) writes into the hosts files.
type Proxy struct {
	Routes []regspec.Route
	// Config gives an endpoint host's TLS settings and credentials.
	Config func(host string) regspec.Config
	Log    *slog.Logger

	ln    net.Listener
	srv   *http.Server
	token string

	mu         sync.Mutex
	transports map[string]http.RoundTripper // per endpoint and repository (token scope)
	inner      map[string]http.RoundTripper // per endpoint host: one connection pool
}

func (p *Proxy) Name() string { return "registry-proxy" }

// Init listens on a free loopback port and draws the secret.
func (p *Proxy) Init(context.Context) error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("registry proxy secret: %w", err)
	}
	p.token = hex.EncodeToString(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("registry proxy: %w", err)
	}
	p.ln = ln
	return nil
}

// Address is how containerd reaches the proxy; nil before Init.
func (p *Proxy) Address() *registries.Proxy {
	if p.ln == nil {
		return nil
	}
	return &registries.Proxy{URL: "http://" + p.ln.Addr().String(), Header: Header, Token: "Bearer " + p.token}
}

// Start serves.
func (p *Proxy) Start(context.Context) error {
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.Log.Error("registry proxy stopped", "err", err)
		}
	}()
	return nil
}

// Stop closes the listener and waits for pulls in flight, up to ctx.
func (p *Proxy) Stop(ctx context.Context) error {
	if p.srv == nil {
		if p.ln != nil {
			return p.ln.Close()
		}
		return nil
	}
	return p.srv.Shutdown(ctx)
}

// ServeHTTP answers /r/ROUTE/v2/NAME/{manifests,blobs}/REF for containerd.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(Header)), []byte("Bearer "+p.token)) != 1 || p.token == "" {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "pulls only", http.StatusMethodNotAllowed)
		return
	}
	route, repo, kind, ref, err := p.parse(r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	newRepo := regspec.Rewrite(route.Rules, repo)
	target, err := p.fetch(r, route, newRepo, kind, ref)
	if err != nil {
		// containerd then tries the next endpoint, and the registry itself last.
		p.Log.Warn("registry mirror failed", "endpoint", route.Endpoint.String(), "repository", newRepo, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer target.Body.Close()
	if target.StatusCode == http.StatusUnauthorized || target.StatusCode == http.StatusForbidden {
		// The proxy holds the credentials: containerd has none to offer, so it is an error of
		// this endpoint, and containerd moves on to the next.
		p.Log.Warn("registry mirror refused the credentials", "endpoint", route.Endpoint.String(), "repository", newRepo, "status", target.Status)
		http.Error(w, "mirror "+route.Endpoint.Host+" refused the credentials: "+target.Status, http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Content-Length", "Docker-Content-Digest", "Content-Range", "Accept-Ranges", "Etag", "Last-Modified"} {
		if v := target.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(target.StatusCode)
	if r.Method == http.MethodGet {
		io.Copy(w, target.Body)
	}
}

// parse splits the request path; the repository may hold slashes, the kind and reference
// are the last two elements.
func (p *Proxy) parse(path string) (regspec.Route, string, string, string, error) {
	rest, ok := strings.CutPrefix(path, "/r/")
	if !ok {
		return regspec.Route{}, "", "", "", errors.New("not a proxied registry path")
	}
	idx, rest, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(p.Routes) {
		return regspec.Route{}, "", "", "", fmt.Errorf("no route %q", idx)
	}
	rest, ok = strings.CutPrefix(rest, "v2/")
	if !ok {
		return regspec.Route{}, "", "", "", errors.New("not a registry API path")
	}
	for _, kind := range []string{"/manifests/", "/blobs/"} {
		if at := strings.LastIndex(rest, kind); at > 0 {
			repo, ref := rest[:at], rest[at+len(kind):]
			if ref == "" || strings.Contains(ref, "/") {
				continue // e.g. a repository with a "manifests" component, asked for a blob
			}
			return p.Routes[i], repo, strings.Trim(kind, "/"), ref, nil
		}
	}
	return regspec.Route{}, "", "", "", errors.New("only manifests and blobs are proxied")
}

// fetch asks the endpoint, following redirects (blob storage) and authenticating as the
// endpoint's challenge asks (basic or bearer token, through go-containerregistry).
func (p *Proxy) fetch(r *http.Request, route regspec.Route, repo, kind, ref string) (*http.Response, error) {
	ep := route.Endpoint
	if _, err := name.NewRepository(ep.Host + "/" + repo); err != nil {
		return nil, fmt.Errorf("rewritten name %q: %w", repo, err)
	}
	rt, err := p.transport(r.Context(), ep.Scheme, ep.Host, repo)
	if err != nil {
		return nil, err
	}
	base := *ep
	base.Path = strings.TrimRight(ep.Path, "/") + "/v2/" + repo + "/" + kind + "/" + ref
	base.RawQuery = ""
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Accept", "Range", "If-None-Match"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	return (&http.Client{Transport: rt}).Do(req)
}

func (p *Proxy) transport(ctx context.Context, scheme, host, repo string) (http.RoundTripper, error) {
	key := scheme + "://" + host + "/" + repo
	p.mu.Lock()
	rt, ok := p.transports[key]
	p.mu.Unlock()
	if ok {
		return rt, nil
	}
	cfg := p.Config(host)
	p.mu.Lock()
	inner, ok := p.inner[host]
	p.mu.Unlock()
	if !ok {
		var err error
		if inner, err = innerTransport(cfg.TLS); err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.inner == nil {
			p.inner = map[string]http.RoundTripper{}
		}
		p.inner[host] = inner
		p.mu.Unlock()
	}
	var opts []name.Option
	if scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", host, err)
	}
	auth := authn.Anonymous
	if a := cfg.Auth; a != nil {
		auth = authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken})
	}
	scope := reg.Repo(repo).Scope(transport.PullScope)
	rt, err = transport.NewWithContext(ctx, reg, auth, inner, []string{scope})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", host, err)
	}
	p.mu.Lock()
	if p.transports == nil || len(p.transports) >= maxTransports {
		p.transports = map[string]http.RoundTripper{}
	}
	p.transports[key] = rt
	p.mu.Unlock()
	return rt, nil
}

// innerTransport is HTTP with the endpoint's CA (beside the system's), client certificate
// and verification setting, as containerd would use for it.
func innerTransport(t *regspec.TLS) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t == nil {
		return tr, nil
	}
	tc := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user's choice, as in containerd
	if t.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("registry CA: %w", err)
		}
		pool.AppendCertsFromPEM(pem)
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("registry client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	tr.TLSClientConfig = tc
	return tr, nil
}
