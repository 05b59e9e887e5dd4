// Package sharedinformers gives the components of one process that act as one identity a
// single client-go informer factory, so the process holds one cache of each resource (one of
// the Nodes) rather than one per component.
//
// The factory's owner is a component of its own, added to a stage before its users: the
// Manager stops in reverse, so it stops after them. The informers run on the owner's stop
// channel, never on a user's: a user that stops (or a leader-only one that never starts) must
// not end a cache the others rely on.
package sharedinformers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Factory owns one identity's shared informers: the component that ends them.
type Factory struct {
	identity string
	factory  informers.SharedInformerFactory
	stop     chan struct{}
	once     sync.Once
}

var _ component.Component = (*Factory)(nil)

// New is the shared factory of client, whose identity names it: informers-IDENTITY. Made at
// once, so a user may register before the owner's Start.
func New(identity string, client kubernetes.Interface) *Factory {
	return &Factory{identity: identity, factory: informers.NewSharedInformerFactory(client, 0), stop: make(chan struct{})}
}

func (f *Factory) Name() string               { return "informers-" + f.identity }
func (f *Factory) Init(context.Context) error { return nil }

// Start starts nothing: each user starts the informers it registered (the factory starts
// only those not yet running), and an informer no user asked for costs nothing.
func (f *Factory) Start(context.Context) error { return nil }

// Stop ends every informer and waits for them, once; its users have stopped before it.
func (f *Factory) Stop(context.Context) error {
	f.once.Do(func() {
		close(f.stop)
		f.factory.Shutdown()
	})
	return nil
}

// User is one component's hold on a factory: the informers it asks the factory for, and the
// handlers it adds to them, which go when it shuts down. It is a ctrlloop.Informers.
type User struct {
	factory informers.SharedInformerFactory
	shared  <-chan struct{} // the owner's stop channel; nil: a factory of the user's own

	mu   sync.Mutex
	regs []registration
}

type registration struct {
	informer cache.SharedIndexInformer
	handle   cache.ResourceEventHandlerRegistration
}

// For is a user of f or, f nil, of a factory of client's that the user alone runs and shuts
// down: a component works alone (its tests, other callers) or shared, as its caller wires it.
// With f set, client is unused: f's client must be of the identity the component acts as.
func For(f *Factory, client kubernetes.Interface) *User {
	if f == nil {
		return &User{factory: informers.NewSharedInformerFactory(client, 0)}
	}
	return &User{factory: f.factory, shared: f.stop}
}

// Factory is where the user gets its informers (and listers): the shared ones, when shared.
func (u *User) Factory() informers.SharedInformerFactory { return u.factory }

// AddEventHandler adds h to inf until the user shuts down. A handler added to an informer
// already synced is told of every object it holds, as Adds.
func (u *User) AddEventHandler(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		return fmt.Errorf("informer event handler: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.regs = append(u.regs, registration{informer: inf, handle: reg})
	return nil
}

// Start starts the informers the factory has not started yet. Shared, they run until the
// owner stops, not until stopCh closes: other users rely on them.
func (u *User) Start(stopCh <-chan struct{}) {
	if u.shared != nil {
		stopCh = u.shared
	}
	u.factory.Start(stopCh)
}

// Shutdown removes the user's handlers and waits until none runs, so no event reaches a
// stopped user. A factory of the user's own is then shut down: call it once the stop channel
// given to Start has closed, or it waits for that.
func (u *User) Shutdown() {
	u.mu.Lock()
	regs := u.regs
	u.regs = nil
	u.mu.Unlock()
	for _, r := range regs {
		// Fails only for a handle the informer did not give, and this one did.
		_ = cache.ShutDownEventHandler(r.informer, r.handle)
	}
	if u.shared == nil {
		u.factory.Shutdown()
	}
}
