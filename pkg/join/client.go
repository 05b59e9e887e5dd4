package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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
}

func (c Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// CheckURL says what is wrong with a --server value.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--server %q: want https://HOST:PORT, for example https://10.0.0.1:6443", s)
	}
	return nil
}

// FetchCA gets the server CA from the first server that answers and checks it against the
// token's pin. It returns the server used.
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
		if err := c.Token.VerifyCA(body); err != nil {
			return s, nil, fmt.Errorf("%s: %w", s, err)
		}
		return s, body, nil
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

// Join sends the request to server, trusting only caPEM.
func (c Client) Join(ctx context.Context, server string, caPEM []byte, r Request) (*Response, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("server CA is not PEM")
	}
	hc := &http.Client{Timeout: c.timeout(), Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+JoinPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(TokenHeader, c.Token.ID+"."+c.Token.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, server, err)
	}
	if resp.StatusCode != http.StatusOK {
		var f Failure
		if json.Unmarshal(raw, &f) != nil || f.Reason == "" {
			return nil, fmt.Errorf("%w: %s answered %d: %s", ErrRefused, server, resp.StatusCode, strings.TrimSpace(string(raw)))
		}
		return nil, &RefusedError{Failure: f}
	}
	var out Response
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("join answer: %w", err)
	}
	return &out, nil
}

// RefusedError is a join the server refused, with its reason.
type RefusedError struct{ Failure Failure }

func (e *RefusedError) Error() string {
	switch e.Failure.Reason {
	case ReasonTokenUnknown:
		return "wrong token: the server does not know it (" + e.Failure.Message + "): use the token in the server's " +
			"/var/lib/outpost/server/token or one from `outpost token create`"
	case ReasonTokenExpired:
		return "expired token: " + e.Failure.Message
	case ReasonNodeTaken:
		return e.Failure.Message
	}
	return "join refused: " + e.Failure.Reason + ": " + e.Failure.Message
}

func (e *RefusedError) Unwrap() error { return ErrRefused }
