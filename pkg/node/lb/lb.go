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
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// LB is the component.
type LB struct {
	Listen  string   // 127.0.0.1:6444
	Servers []string // host:port
	Log     *slog.Logger
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error) // for tests

	mu      sync.Mutex
	current int
	l       net.Listener
	wg      sync.WaitGroup
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
		b.Log.Warn("no server answers", "servers", b.Servers, "err", err)
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
	b.mu.Lock()
	start := b.current
	b.mu.Unlock()
	var last error
	for i := range b.Servers {
		k := (start + i) % len(b.Servers)
		c, err := b.Dial(context.Background(), "tcp", b.Servers[k])
		if err != nil {
			last = err
			continue
		}
		if k != start {
			b.mu.Lock()
			b.current = k
			b.mu.Unlock()
			b.Log.Info("switched server", "to", b.Servers[k])
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
