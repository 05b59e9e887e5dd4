// Package ctrlloop is the work loop the control-plane controllers share: informer events queue
// string keys on a rate-limited workqueue, and workers, once the informers have synced, hand
// each key to the controller's Sync and retry a failed one with backoff.
package ctrlloop

import (
	"context"
	"sync"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Informers is what the loop needs of a shared informer factory: client-go's typed and dynamic
// factories both fit, and a sharedinformers.User, whose Shutdown leaves the process's shared
// informers running for their other users.
type Informers interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// Config is one controller's loop.
type Config struct {
	// Sync reconciles one key; an error retries the key with backoff, nil forgets its failures.
	Sync func(ctx context.Context, key string) error
	// Failed, when set, is told of a failed Sync before the key is retried: the controller
	// logs it in its own words.
	Failed func(ctx context.Context, key string, err error)
	// RateLimiter spaces the retries of a failing key; nil is client-go's default controller one.
	RateLimiter workqueue.TypedRateLimiter[string]
	// Workers is how many keys are synced at once; 0 is 1. The queue never hands one key to
	// two workers.
	Workers int
	// Informers, when set, are started by Start (after Before) and shut down when the loop ends.
	Informers Informers
	// Synced are the informers the workers wait for: a Sync on a cache not yet filled would
	// act on a partial view.
	Synced []cache.InformerSynced
	// Before, when set, runs first in the background; the informers start once it returns
	// (a CRD they list must exist first). It must return when ctx ends.
	Before func(ctx context.Context)
}

// Loop is a rate-limited queue of keys and the workers that drain it.
type Loop struct {
	cfg    Config
	queue  workqueue.TypedRateLimitingInterface[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes the loop and its queue; keys can be added before Start, and wait for the workers.
func New(cfg Config) *Loop {
	if cfg.RateLimiter == nil {
		cfg.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[string]()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	return &Loop{cfg: cfg, queue: workqueue.NewTypedRateLimitingQueue(cfg.RateLimiter)}
}

// Add queues key; a key already waiting is not queued twice.
func (l *Loop) Add(key string) { l.queue.Add(key) }

// KeyHandler queues key on every event: for a controller that replans all its objects at once.
func (l *Loop) KeyHandler(key string) cache.ResourceEventHandlerFuncs {
	add := func(any) { l.Add(key) }
	return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, cur any) { add(cur) }, DeleteFunc: add}
}

// ObjectHandler queues each object's namespace/name key, a deleted object's included.
func (l *Loop) ObjectHandler() cache.ResourceEventHandlerFuncs {
	add := func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			l.Add(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, cur any) { add(cur) }, DeleteFunc: add}
}

// Start runs the loop in the background until ctx ends or Stop is called: Before, then the
// informers, then, once they have synced, the workers. It is called once.
func (l *Loop) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		<-ctx.Done()
		l.queue.ShutDown() // Get returns quit: the workers end
	}()
	go func() {
		defer l.wg.Done()
		l.run(ctx)
	}()
}

func (l *Loop) run(ctx context.Context) {
	if l.cfg.Before != nil {
		l.cfg.Before(ctx)
	}
	if ctx.Err() != nil {
		return
	}
	if l.cfg.Informers != nil {
		l.cfg.Informers.Start(ctx.Done())
		// Waits for the informers' goroutines: Stop returns with nothing left watching.
		defer l.cfg.Informers.Shutdown()
	}
	if !cache.WaitForCacheSync(ctx.Done(), l.cfg.Synced...) {
		return
	}
	var workers sync.WaitGroup
	for range l.cfg.Workers {
		workers.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	workers.Wait()
}

// Stop ends the loop and waits for its workers and informers. It is safe on a nil Loop and on
// one never started: a component may be stopped before it started.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	if l.cancel != nil {
		l.cancel()
	}
	l.queue.ShutDown() // also when never started: the queue's own goroutine ends
	l.wg.Wait()
}

func (l *Loop) next(ctx context.Context) bool {
	k, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(k)
	if err := l.cfg.Sync(ctx, k); err != nil {
		if l.cfg.Failed != nil {
			l.cfg.Failed(ctx, k, err)
		}
		l.queue.AddRateLimited(k)
		return true
	}
	l.queue.Forget(k)
	return true
}
