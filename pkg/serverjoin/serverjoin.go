// Package serverjoin is how a server joins a cluster with embedded etcd: it fetches the
// cluster's bootstrap data (CAs and their keys, the service-account key, the encryption
// config) from a running server, which it trusts by the token's CA pin as an agent does, and
// asks that server to add it as an etcd member. Both calls carry the cluster token; only the
// cluster's own token is accepted (the agent token and those from `outpost token create` join
// agents only). The data travels sealed with the token as well, as it is stored in the
// datastore. A member add also carries the joining server's node password: the name of a
// member is bound to the machine that first took it, as a node name is.
package serverjoin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Paths on the server's apiserver port; the apiserver lets anonymous callers reach them and
// the handler checks the token.
const (
	BootstrapPath = "/v1-outpost/server-bootstrap"
	MemberPath    = "/v1-outpost/etcd-member"
)

// MemberRequest asks for an etcd member.
type MemberRequest struct {
	Name         string `json:"name"`
	PeerURL      string `json:"peerURL"`
	NodePassword string `json:"nodePassword"`
}

// MemberResponse is the initial cluster the new member starts with.
type MemberResponse struct {
	InitialCluster string `json:"initialCluster"`
}

// Handler serves BootstrapPath and MemberPath.
type Handler struct {
	// Token is the cluster token now (it may be rotated while the server runs).
	Token func() (token.Token, error)
	// Data is the cluster's bootstrap data.
	Data func() (*bootstrap.Data, error)
	// Bind proves a joining server's node password for its name, recording it on first use
	// (join.Passwords.Verify): only that machine may have the name's member replaced.
	Bind func(ctx context.Context, name, password string) error
	// AddMember adds an etcd member and returns the initial cluster it starts with.
	AddMember func(ctx context.Context, name, peerURL string) (string, error)
	// OwnName and OwnPeerURL are this server's member: no joining server may replace it.
	OwnName, OwnPeerURL string
	Limiter             *join.Limiter
	Log                 *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	done, ok := h.Limiter.Begin(join.SourceIP(r.RemoteAddr))
	if !ok {
		http.Error(w, "too many failed attempts from this address: wait a minute", http.StatusTooManyRequests)
		return
	}
	status, msg := h.serve(w, r)
	done(status == http.StatusUnauthorized)
	if status != http.StatusOK {
		if h.Log != nil {
			h.Log.Warn("server join refused", "path", r.URL.Path, "from", r.RemoteAddr, "status", status, "message", msg)
		}
		http.Error(w, msg, status)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, string) {
	cluster, err := h.Token()
	if err != nil {
		return http.StatusInternalServerError, "the server has no token: see its log"
	}
	presented, err := token.Parse(r.Header.Get(join.TokenHeader))
	if err != nil || !cluster.Matches(presented) {
		return http.StatusUnauthorized, "token not accepted: a server joins with the cluster's token, the one in the first server's /var/lib/outpost/server/token"
	}
	switch {
	case r.URL.Path == BootstrapPath && r.Method == http.MethodGet:
		d, err := h.Data()
		if err != nil {
			return http.StatusInternalServerError, "bootstrap data: " + err.Error()
		}
		blob, err := bootstrap.Seal(d, cluster)
		if err != nil {
			return http.StatusInternalServerError, "bootstrap data: " + err.Error()
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(blob)
		return http.StatusOK, ""
	case r.URL.Path == MemberPath && r.Method == http.MethodPost:
		var req MemberRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			return http.StatusBadRequest, "request is not JSON: " + err.Error()
		}
		if err := checkMember(req); err != nil {
			return http.StatusBadRequest, err.Error()
		}
		if req.Name == h.OwnName || req.PeerURL == h.OwnPeerURL {
			return http.StatusConflict, fmt.Sprintf("member %s (%s) is this server's own: give the joining server its own --node-name and --node-ip", req.Name, req.PeerURL)
		}
		if err := h.Bind(r.Context(), req.Name, req.NodePassword); err != nil {
			if errors.Is(err, join.ErrNodeTaken) {
				return http.StatusConflict, err.Error()
			}
			return http.StatusServiceUnavailable, "node password: " + err.Error()
		}
		initial, err := h.AddMember(r.Context(), req.Name, req.PeerURL)
		if errors.Is(err, ErrConflict) {
			return http.StatusConflict, err.Error()
		}
		if err != nil { // etcd cannot now (a learner pending, a member just promoted): retried
			return http.StatusServiceUnavailable, err.Error()
		}
		if h.Log != nil {
			h.Log.Info("etcd member added", "name", req.Name, "peer", req.PeerURL)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(MemberResponse{InitialCluster: initial})
		return http.StatusOK, ""
	}
	return http.StatusNotFound, "no such call"
}

// checkMember refuses names and URLs etcd would choke on, or that could smuggle more members
// into the initial cluster ("," and "=").
func checkMember(m MemberRequest) error {
	if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
		return fmt.Errorf("member name %q: %s", m.Name, strings.Join(errs, "; "))
	}
	if len(m.NodePassword) < 16 || len(m.NodePassword) > 256 {
		return errors.New("node password must be 16 to 256 characters: is the joining server of this version?")
	}
	u, err := url.Parse(m.PeerURL)
	if err != nil || u.Scheme != "https" || u.Path != "" || u.User != nil || u.RawQuery != "" || net.ParseIP(u.Hostname()) == nil || u.Port() == "" {
		return fmt.Errorf("peer URL %q: want https://IP:PORT", m.PeerURL)
	}
	return nil
}

// Client joins a server to the cluster through Server.
type Client struct {
	Server  string // https://HOST:PORT of a running server
	Token   token.Token
	Timeout time.Duration // per request; default 20 s
	// Password is this server's node password (AddMember proves it).
	Password string
	// Patience bounds AddMember's retries of transient refusals; default 5 minutes.
	Patience time.Duration
	// Log gets one line per retry; may be nil.
	Log *slog.Logger
	// sleep waits between retries (tests shorten it).
	sleep func(context.Context, time.Duration) error
}

// Bootstrap fetches and opens the cluster's bootstrap data, after checking the server's CA
// against the token's pin.
func (c Client) Bootstrap(ctx context.Context) (*bootstrap.Data, error) {
	hc, err := c.http(ctx)
	if err != nil {
		return nil, err
	}
	blob, err := c.do(ctx, hc, http.MethodGet, BootstrapPath, nil)
	if err != nil {
		return nil, err
	}
	d, err := bootstrap.Open(blob, c.Token)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", c.Server, err)
	}
	return d, nil
}

// AddMember asks the server to add this server's etcd member. Servers started together all
// ask at once, and etcd admits one learner at a time: a transient refusal is retried with
// backoff (1 s doubling to 15 s) until Patience has passed, one log line per retry.
func (c Client) AddMember(ctx context.Context, name, peerURL string) (string, error) {
	patience := c.Patience
	if patience <= 0 {
		patience = 5 * time.Minute
	}
	sleep := c.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	deadline := time.Now().Add(patience)
	wait := time.Second
	for attempt := 1; ; attempt++ {
		initial, err := c.addMember(ctx, name, peerURL)
		if err == nil || !Transient(err) || time.Now().Add(wait).After(deadline) {
			return initial, err
		}
		if c.Log != nil {
			c.Log.Info("etcd member add not possible yet: trying again", "attempt", attempt, "in", wait, "reason", err)
		}
		if err := sleep(ctx, wait); err != nil {
			return "", fmt.Errorf("etcd member add: %w", err)
		}
		wait = min(2*wait, 15*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (c Client) addMember(ctx context.Context, name, peerURL string) (string, error) {
	hc, err := c.http(ctx)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(MemberRequest{Name: name, PeerURL: peerURL, NodePassword: c.Password})
	if err != nil {
		return "", err
	}
	raw, err := c.do(ctx, hc, http.MethodPost, MemberPath, body)
	if err != nil {
		return "", err
	}
	var resp MemberResponse
	if err := json.Unmarshal(raw, &resp); err != nil || resp.InitialCluster == "" {
		return "", fmt.Errorf("--server %s sent an answer this server cannot use (%v): is it the same version?", c.Server, err)
	}
	return resp.InitialCluster, nil
}

// http is a client trusting only the CA the token pins.
func (c Client) http(ctx context.Context) (*http.Client, error) {
	_, ca, err := join.Client{Servers: []string{c.Server}, Token: c.Token, Timeout: c.timeout()}.FetchCA(ctx)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: c.timeout(), Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

func (c Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 20 * time.Second
}

// ErrConflict, from Handler.AddMember, is a member add that trying again cannot mend (the
// peer URL is another server's member): the joiner is told so at once.
var ErrConflict = errors.New("member conflict")

// ErrRefused is a call the server answered with an error.
var ErrRefused = errors.New("refused")

// RefusedError is a server's refusal, with its HTTP status; errors.Is(err, ErrRefused).
type RefusedError struct {
	Server string
	Status int
	Msg    string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("--server %s refused the server join (%d): %s", e.Server, e.Status, e.Msg)
}

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Transient says whether a failed call may succeed when tried again: the server did not
// answer, or answered that it cannot now (503: etcd admits one learner at a time, and
// refuses a member add while a member just promoted has not been connected long; 429: the
// limiter). A refusal of the request itself (a bad token, a taken name) is final.
func Transient(err error) bool {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests
	}
	return errors.Is(err, join.ErrUnreachable)
}

func (c Client) do(ctx context.Context, hc *http.Client, method, path string, body []byte) ([]byte, error) {
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(join.TokenHeader, c.Token.ID+"."+c.Token.Secret)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w: %w", c.Server, join.ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w: %w", c.Server, join.ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &RefusedError{Server: c.Server, Status: resp.StatusCode, Msg: strings.TrimSpace(string(raw))}
	}
	return raw, nil
}
