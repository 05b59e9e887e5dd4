package sharedinformers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/control/ctrlloop"
)

func node(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

// seen records the Node names a handler was told of.
type seen struct {
	mu    sync.Mutex
	names []string
}

func (s *seen) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.names = append(s.names, obj.(*corev1.Node).Name)
	}}
}

func (s *seen) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.names, name)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// Two users of the Nodes get one informer; the first to stop ends neither the informer nor
// the other's events; the owner's Stop ends the informer.
func TestUsersShareOneInformerThatOutlivesThem(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(node("n1"))
	f := New("admin", cs)
	if f.Name() != "informers-admin" {
		t.Errorf("name %q", f.Name())
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := For(f, cs), For(f, cs)
	inf := a.Factory().Core().V1().Nodes().Informer()
	// Informer() wraps the one informer anew on each call: its cache is what is shared.
	if b.Factory().Core().V1().Nodes().Informer().GetIndexer() != inf.GetIndexer() {
		t.Fatal("two users of one factory hold two Node caches")
	}

	// a runs as a ctrlloop does: started and shut down with its own loop's context.
	var sa, sb seen
	if err := a.AddEventHandler(inf, sa.handler()); err != nil {
		t.Fatal(err)
	}
	aCtx, aStop := context.WithCancel(ctx)
	a.Start(aCtx.Done())
	bCtx, bStop := context.WithCancel(ctx)
	defer bStop()
	if err := b.AddEventHandler(inf, sb.handler()); err != nil {
		t.Fatal(err)
	}
	b.Start(bCtx.Done()) // the informer runs already: nothing more starts
	eventually(t, "both users told of n1", func() bool { return sa.has("n1") && sb.has("n1") })

	aStop()
	a.Shutdown()
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("n2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b told of n2 after a stopped", func() bool { return sb.has("n2") })
	if inf.IsStopped() {
		t.Fatal("the shared informer stopped with its first user")
	}
	if sa.has("n2") {
		t.Error("a stopped user was told of n2")
	}

	b.Shutdown()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !inf.IsStopped() {
		t.Error("the owner's Stop left the informer running")
	}
	if err := f.Stop(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
}

// Without a shared factory a user has its own: its informers end with the stop channel it
// gives and its Shutdown, as a component's did before sharing.
func TestUserWithoutFactoryOwnsItsInformers(t *testing.T) {
	cs := fake.NewClientset(node("n1"))
	a, b := For(nil, cs), For(nil, cs)
	inf := a.Factory().Core().V1().Nodes().Informer()
	if b.Factory().Core().V1().Nodes().Informer().GetIndexer() == inf.GetIndexer() {
		t.Fatal("two unshared users share a Node cache")
	}
	var s seen
	if err := a.AddEventHandler(inf, s.handler()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	a.Start(stop)
	eventually(t, "told of n1", func() bool { return s.has("n1") })
	close(stop)
	a.Shutdown()
	if !inf.IsStopped() {
		t.Error("an unshared informer outlived its user")
	}
}

// A ctrlloop whose Informers is a user of a shared factory leaves, when it stops, the
// informers running for a second loop on the same factory.
func TestLoopStopKeepsSharedInformers(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(node("n1"))
	f := New("admin", cs)
	defer f.Stop(ctx)
	type ctl struct {
		loop *ctrlloop.Loop
		mu   sync.Mutex
		keys []string
	}
	start := func() *ctl {
		c := &ctl{}
		u := For(f, cs)
		nodes := u.Factory().Core().V1().Nodes().Informer()
		c.loop = ctrlloop.New(ctrlloop.Config{Informers: u, Synced: []cache.InformerSynced{nodes.HasSynced},
			Sync: func(_ context.Context, k string) error {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.keys = append(c.keys, k)
				return nil
			}})
		if err := u.AddEventHandler(nodes, c.loop.ObjectHandler()); err != nil {
			t.Fatal(err)
		}
		c.loop.Start(ctx)
		return c
	}
	has := func(c *ctl, k string) func() bool {
		return func() bool { c.mu.Lock(); defer c.mu.Unlock(); return slices.Contains(c.keys, k) }
	}
	one, two := start(), start()
	eventually(t, "both loops synced n1", func() bool { return has(one, "n1")() && has(two, "n1")() })
	one.loop.Stop()
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("n2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second loop synced n2 after the first stopped", has(two, "n2"))
	two.loop.Stop()
}
