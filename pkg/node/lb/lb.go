// Package lb is the agent's client-side load balancer: the node's kubeconfigs name a local
// address, and each connection goes to the first server that accepts it, starting with the
// one that answered last. TLS passes through untouched (every server's certificate names
// 127.0.0.1), so an agent given several --server URLs keeps working while any one is up.
package lb

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// LB is the component.
type LB struct {
	Listen  string   // 127.0.0.1:6444
	Servers []string // host:port, the ones given; SetServers replaces the list in use
	Log     *slog.Logger
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error) // for tests

	mu      sync.Mutex
	current string   // the server that answered last
	servers []string // in use; Servers until SetServers
	l       net.Listener
	wg      sync.WaitGroup
}

// SetServers replaces the servers connections go to (new connections; open ones stay). The
// one in use stays first while it is listed.
func (b *LB) SetServers(servers []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if slices.Equal(servers, b.servers) || len(servers) == 0 {
		return
	}
	b.servers = slices.Clone(servers)
	b.Log.Info("servers", "list", servers)
}

// List is the servers in use.
func (b *LB) List() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.servers == nil {
		return slices.Clone(b.Servers)
	}
	return slices.Clone(b.servers)
}

func (b *LB) Name() string { return "load-balancer" }

// Init listens, so the kubeconfigs work before Start.
func (b *LB) Init(context.Context) error {
	l, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return fmt.Errorf("agent load balancer on %s: %w", b.Listen, err)
	}
	b.l = l
	if b.Dial == nil {
		d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
		b.Dial = d.DialContext
	}
	return nil
}

// Start serves in the background.
func (b *LB) Start(context.Context) error {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := b.l.Accept()
			if err != nil {
				return // listener closed
			}
			go b.serve(c)
		}
	}()
	return nil
}

// Addr is where it listens.
func (b *LB) Addr() string { return b.l.Addr().String() }

func (b *LB) serve(c net.Conn) {
	defer c.Close()
	up, err := b.dial()
	if err != nil {
		b.Log.Warn("no server answers", "servers", b.List(), "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		t.CloseWrite()
	}
}

// dial tries the current server first, then the others in order, and remembers which worked.
func (b *LB) dial() (net.Conn, error) {
	servers := b.List()
	b.mu.Lock()
	cur := b.current
	b.mu.Unlock()
	if i := slices.Index(servers, cur); i > 0 {
		servers = append(append([]string{cur}, servers[:i]...), servers[i+1:]...)
	}
	last := fmt.Errorf("no servers")
	for _, s := range servers {
		c, err := b.Dial(context.Background(), "tcp", s)
		if err != nil {
			last = err
			continue
		}
		if s != cur {
			b.mu.Lock()
			b.current = s
			b.mu.Unlock()
			if cur != "" {
				b.Log.Info("switched server", "to", s)
			}
		}
		return c, nil
	}
	return nil, last
}

// Stop closes the listener; open connections end with their peers.
func (b *LB) Stop(context.Context) error {
	if b.l != nil {
		b.l.Close()
	}
	b.wg.Wait()
	return nil
}

var _ component.Component = (*LB)(nil)
