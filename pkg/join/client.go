package join

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Why a join failed, for the agent's one-line error.
var (
	ErrUnreachable = errors.New("server unreachable")
	ErrRefused     = errors.New("join refused")
)

// Client joins through one of several server URLs, using the first that answers.
type Client struct {
	Servers []string
	Token   token.Token
	Timeout time.Duration // per request; default 10 s
	// Retry is the pause before asking a server again that said it is still starting;
	// default 2 s. The caller's context bounds the retries.
	Retry time.Duration
}

func (c Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// PinnedCA returns the one CA certificate in body whose SHA-256 is pin, as PEM. Anything else
// is refused: a second certificate beside the pinned one would otherwise become trusted too,
// and a server presenting a certificate from it would receive the token.
func PinnedCA(body []byte, pin string) ([]byte, error) {
	certs, err := pki.PEMCerts(body)
	if err != nil {
		return nil, fmt.Errorf("%w: the CA it sent is not PEM: %w", token.ErrPinMismatch, err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w: it sent %d certificates where the token pins exactly one CA: someone may be in the middle", token.ErrPinMismatch, len(certs))
	}
	sum := sha256.Sum256(certs[0].Raw)
	got := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(pin)) != 1 {
		return nil, fmt.Errorf("%w (token pins %s…, server sent %s…): the token belongs to another cluster, or someone is in the middle", token.ErrPinMismatch, pin[:min(12, len(pin))], got[:12])
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("%w: the pinned certificate is not a CA", token.ErrPinMismatch)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw}), nil
}

// FetchCA gets the server CA from the first server that answers and checks it against the
// token's pin. It returns the server used and the pinned CA alone.
func (c Client) FetchCA(ctx context.Context) (server string, caPEM []byte, err error) {
	if c.Token.CAHash == "" {
		return "", nil, errors.New("the token carries no CA pin (OP10<hash>::…): use the full token from the server's token file or `outpost token create`")
	}
	var errs []string
	for _, s := range c.Servers {
		// Unverified on purpose: the pin, not the transport, decides whether this CA is trusted.
		hc := &http.Client{Timeout: c.timeout(), Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		body, status, err := get(ctx, hc, strings.TrimSuffix(s, "/")+CACertsPath)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s, err))
			continue
		}
		if status != http.StatusOK {
			errs = append(errs, fmt.Sprintf("%s: answered %d to %s (is it an Outpost server?)", s, status, CACertsPath))
			continue
		}
		ca, err := PinnedCA(body, c.Token.CAHash)
		if err != nil {
			return s, nil, fmt.Errorf("%s: %w", s, err)
		}
		return s, ca, nil
	}
	return "", nil, fmt.Errorf("%w: %s: check --server and that the server runs and its port is open", ErrUnreachable, strings.Join(errs, "; "))
}

func get(ctx context.Context, hc *http.Client, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

// Join sends the request to server with the token, trusting only caPEM.
func (c Client) Join(ctx context.Context, server string, caPEM []byte, r Request) (*Response, error) {
	return c.post(ctx, server, JoinPath, caPEM, nil, r)
}

// RenewWith sends the request to server authenticated by the node's client certificate instead
// of a token, trusting only caPEM.
func (c Client) RenewWith(ctx context.Context, server string, caPEM []byte, cert tls.Certificate, r Request) (*Response, error) {
	return c.post(ctx, server, RenewPath, caPEM, &cert, r)
}

func (c Client) post(ctx context.Context, server, path string, caPEM []byte, cert *tls.Certificate, r Request) (*Response, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("server CA is not PEM")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	hc := &http.Client{Timeout: c.timeout(), Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	retry := c.Retry
	if retry <= 0 {
		retry = 2 * time.Second
	}
	for {
		out, again, err := c.send(ctx, hc, server, path, body, cert == nil)
		if again && path == RenewPath && !isUnavailable(err) {
			// Forbidden by the apiserver itself: a server without the renewal rule (older
			// than this agent) says so for good; do not wait on it.
			again = false
			err = fmt.Errorf("%w: %s does not let nodes renew (%w): an older server? upgrade it, or join this node again with a token", ErrRefused, server, err)
		}
		if !again {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(retry):
		}
	}
}

func isUnavailable(err error) bool {
	var r *RefusedError
	return errors.As(err, &r) && r.Failure.Reason == ReasonUnavailable
}

// send makes one attempt; again says the server asked for another later.
func (c Client) send(ctx context.Context, hc *http.Client, server, path string, body []byte, withToken bool) (*Response, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	if withToken {
		req.Header.Set(TokenHeader, c.Token.ID+"."+c.Token.Secret)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreachable, server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreachable, server, err)
	}
	if resp.StatusCode != http.StatusOK {
		var f Failure
		if json.Unmarshal(raw, &f) != nil || f.Reason == "" {
			return nil, false, fmt.Errorf("%w: %s answered %d: %s", ErrRefused, server, resp.StatusCode, strings.TrimSpace(string(raw)))
		}
		// The apiserver itself forbids the path until the server has applied its RBAC rules.
		again := f.Reason == ReasonUnavailable || (resp.StatusCode == http.StatusForbidden && f.Reason == "Forbidden")
		return nil, again, &RefusedError{Failure: f}
	}
	var out Response
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, fmt.Errorf("%s sent an answer this agent cannot use (upgrade it to the server's version?): %w", server, err)
	}
	return &out, false, nil
}

// RefusedError is a join the server refused, with its reason.
type RefusedError struct{ Failure Failure }

func (e *RefusedError) Error() string {
	switch e.Failure.Reason {
	case ReasonTokenUnknown:
		return "wrong token: " + e.Failure.Message
	case ReasonTokenExpired:
		return "expired token: " + e.Failure.Message
	case ReasonNodeTaken, ReasonTooMany:
		return e.Failure.Message
	}
	return "join refused: " + e.Failure.Reason + ": " + e.Failure.Message
}

func (e *RefusedError) Unwrap() error { return ErrRefused }
