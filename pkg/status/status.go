// Package status serves a running server's or agent's component health on a unix socket in
// its runtime dir (root only), and reads and prints it for `outpost status`, as k0s status
// does: each component by stage, ready or not, since when.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Report is what the socket answers.
type Report struct {
	Role       string             `json:"role"` // server or agent
	Node       string             `json:"node"`
	Started    time.Time          `json:"started"`
	Components []component.Health `json:"components"`
}

// Server answers on Socket with Report, its Components from Health at each request.
type Server struct {
	Socket string
	Report Report
	Health func() []component.Health

	srv *http.Server
	ln  net.Listener
}

// Start listens (the socket 0600, its dir 0700: the health of every component is the
// node's business only) and serves in the background.
func (s *Server) Start() error {
	if err := os.MkdirAll(filepath.Dir(s.Socket), 0o700); err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	os.Remove(s.Socket) // a socket left by a killed run
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(s.Socket, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("status socket: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r := s.Report
		r.Components = s.Health()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Stop closes the socket.
func (s *Server) Stop() {
	if s.srv != nil {
		_ = s.srv.Close()
		os.Remove(s.Socket)
	}
}

// ErrNotRunning means no server or agent answers on the socket.
var ErrNotRunning = errors.New("no Outpost server or agent runs with this runtime dir")

// Fetch asks the socket for the report.
func Fetch(ctx context.Context, socket string) (*Report, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://outpost/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrNotRunning, socket, err)
	}
	defer resp.Body.Close()
	var r Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("status from %s: %w", socket, err)
	}
	return &r, nil
}

// Print writes the report as a table; it returns how many components are not ready
// (starting, not-ready or pending).
func Print(w io.Writer, r *Report, now time.Time) int {
	fmt.Fprintf(w, "%s %s, up %s\n", r.Role, r.Node, now.Sub(r.Started).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tCOMPONENT\tSTATE\tSINCE\tERROR")
	bad := 0
	for _, h := range r.Components {
		switch h.State {
		case component.StateReady, component.StateRunning:
		default:
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Stage, h.Name, h.State, now.Sub(h.Since).Round(time.Second), h.Error)
	}
	tw.Flush()
	return bad
}
