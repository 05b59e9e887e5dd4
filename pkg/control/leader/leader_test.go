package leader

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/component"
)

type probe struct {
	name           string
	inits, running atomic.Int32
}

func (p *probe) Name() string                { return p.name }
func (p *probe) Init(context.Context) error  { p.inits.Add(1); return nil }
func (p *probe) Start(context.Context) error { p.running.Store(1); return nil }
func (p *probe) Stop(context.Context) error  { p.running.Store(0); return nil }

func elected(client *fake.Clientset, id string) *Elected {
	return &Elected{Lease: "outpost-controllers", Identity: id, Client: client, Components: nil, Log: slog.New(slog.DiscardHandler),
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOneServerRunsTheControllers(t *testing.T) {
	client := fake.NewClientset()
	ctx := context.Background()
	a, b := &probe{name: "a"}, &probe{name: "b"}
	ea, eb := elected(client, "s1"), elected(client, "s2")
	ea.Components, eb.Components = []component.Component{a}, []component.Component{b}
	for _, e := range []*Elected{ea, eb} {
		if err := e.Init(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.inits.Load() != 1 || b.inits.Load() != 1 {
		t.Error("every server inits the controllers")
	}
	ea.Start(ctx)
	waitFor(t, "the first server leads", func() bool { return a.running.Load() == 1 })
	eb.Start(ctx)
	time.Sleep(3 * time.Second) // longer than a lease
	if b.running.Load() != 0 {
		t.Fatal("two servers run the controllers")
	}
	// The leader stops: it gives the lease up, and the other takes over.
	ea.Stop(ctx)
	if a.running.Load() != 0 {
		t.Error("controllers still running after Stop")
	}
	waitFor(t, "the second server takes over", func() bool { return b.running.Load() == 1 })
	eb.Stop(ctx)
	select {
	case err := <-eb.Done():
		t.Errorf("a server that stops is not one that lost its lease: %v", err)
	default:
	}
}
