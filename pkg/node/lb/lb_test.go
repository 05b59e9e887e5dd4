package lb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// echoServer answers each line with its name.
func echoServer(t *testing.T, name string) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					fmt.Fprintf(c, "%s\n", name)
				}
			}()
		}
	}()
	return l
}

func ask(t *testing.T, addr string) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hi")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(line)
}

func TestFailsOverAndStays(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	defer b.Close()
	lb := &LB{Listen: "127.0.0.1:0", Servers: []string{a.Addr().String(), b.Addr().String()}, Log: slog.New(slog.DiscardHandler)}
	if err := lb.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	lb.Start(context.Background())
	defer lb.Stop(context.Background())
	if got := ask(t, lb.Addr()); got != "a" {
		t.Fatalf("first server answers: %q", got)
	}
	a.Close() // the first server goes away
	if got := ask(t, lb.Addr()); got != "b" {
		t.Fatalf("after the first went away: %q", got)
	}
	if got := ask(t, lb.Addr()); got != "b" {
		t.Fatalf("stays with the server that answered: %q", got)
	}
}

func TestNoServerAnswers(t *testing.T) {
	lb := &LB{Listen: "127.0.0.1:0", Servers: []string{"127.0.0.1:1"}, Log: slog.New(slog.DiscardHandler)}
	if err := lb.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	lb.Start(context.Background())
	defer lb.Stop(context.Background())
	if got := ask(t, lb.Addr()); got != "" && !strings.HasPrefix(got, "error") {
		t.Fatalf("got %q from nowhere", got)
	}
}

func TestSetServersReplacesTheList(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	defer a.Close()
	defer b.Close()
	lb := &LB{Listen: "127.0.0.1:0", Servers: []string{a.Addr().String()}, Log: slog.New(slog.DiscardHandler)}
	if err := lb.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	lb.Start(context.Background())
	defer lb.Stop(context.Background())
	if got := ask(t, lb.Addr()); got != "a" {
		t.Fatalf("given server: %q", got)
	}
	// The server in use stays first while listed; when it leaves the list, the others serve.
	lb.SetServers([]string{b.Addr().String(), a.Addr().String()})
	if got := ask(t, lb.Addr()); got != "a" {
		t.Fatalf("switched away from a working server: %q", got)
	}
	lb.SetServers([]string{b.Addr().String()})
	if got := ask(t, lb.Addr()); got != "b" {
		t.Fatalf("after the list changed: %q", got)
	}
	lb.SetServers(nil) // an empty list is ignored: never no servers at all
	if got := ask(t, lb.Addr()); got != "b" {
		t.Fatalf("empty list: %q", got)
	}
}
