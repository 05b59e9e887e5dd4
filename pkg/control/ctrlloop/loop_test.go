package ctrlloop

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// keys records what Sync was handed, in order.
type keys struct {
	mu  sync.Mutex
	got []string
}

func (k *keys) add(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got = append(k.got, key)
}

func (k *keys) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// A ConfigMap made after the start reaches Sync by its key, through a fake clientset's informer.
func TestInformerEventIsSynced(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "before"}})
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().ConfigMaps().Informer()
	var seen keys
	l := New(Config{
		Sync:      func(_ context.Context, k string) error { seen.add(k); return nil },
		Informers: f,
		Synced:    []cache.InformerSynced{inf.HasSynced},
	})
	if _, err := inf.AddEventHandler(l.ObjectHandler()); err != nil {
		t.Fatal(err)
	}
	l.Start(ctx)
	defer l.Stop()
	waitFor(t, "ns/before synced", func() bool { return slices.Contains(seen.list(), "ns/before") })
	if _, err := cs.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ns/after synced", func() bool { return slices.Contains(seen.list(), "ns/after") })
}

// countingLimiter is an exponential limiter with tiny delays that counts its calls.
type countingLimiter struct {
	workqueue.TypedRateLimiter[string]
	mu            sync.Mutex
	when, forgets int
}

func (c *countingLimiter) When(k string) time.Duration {
	c.mu.Lock()
	c.when++
	c.mu.Unlock()
	return c.TypedRateLimiter.When(k)
}

func (c *countingLimiter) Forget(k string) {
	c.mu.Lock()
	c.forgets++
	c.mu.Unlock()
	c.TypedRateLimiter.Forget(k)
}

func (c *countingLimiter) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.when, c.forgets
}

// A key whose Sync fails is told to Failed and retried through the rate limiter until it
// succeeds; success forgets its failures.
func TestFailingKeyRetriedWithRateLimit(t *testing.T) {
	ctx := context.Background()
	rl := &countingLimiter{TypedRateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond)}
	var tries, failed keys
	l := New(Config{
		RateLimiter: rl,
		Sync: func(_ context.Context, k string) error {
			tries.add(k)
			if len(tries.list()) < 3 {
				return errors.New("not yet")
			}
			return nil
		},
		Failed: func(_ context.Context, k string, err error) { failed.add(k + ": " + err.Error()) },
	})
	l.Add("x")
	l.Start(ctx)
	defer l.Stop()
	waitFor(t, "three tries", func() bool { return len(tries.list()) == 3 })
	waitFor(t, "forgotten after success", func() bool { _, f := rl.counts(); return f == 1 })
	if when, _ := rl.counts(); when != 2 {
		t.Errorf("rate limiter asked %d times, want 2 (one per failure)", when)
	}
	if got := failed.list(); len(got) != 2 || got[0] != "x: not yet" {
		t.Errorf("Failed told %v, want x twice", got)
	}
	if n := rl.NumRequeues("x"); n != 0 {
		t.Errorf("requeues after success: %d", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(tries.list()); n != 3 {
		t.Errorf("synced %d times, want 3: retried after success", n)
	}
}

// The workers wait for the informers' caches: no Sync before Synced is true.
func TestWorkersWaitForSync(t *testing.T) {
	var mu sync.Mutex
	synced := false
	var seen keys
	l := New(Config{
		Sync:   func(_ context.Context, k string) error { seen.add(k); return nil },
		Synced: []cache.InformerSynced{func() bool { mu.Lock(); defer mu.Unlock(); return synced }},
	})
	l.Add("all")
	l.Start(context.Background())
	defer l.Stop()
	time.Sleep(250 * time.Millisecond)
	if got := seen.list(); len(got) != 0 {
		t.Fatalf("synced before the caches: %v", got)
	}
	mu.Lock()
	synced = true
	mu.Unlock()
	waitFor(t, "all synced", func() bool { return slices.Contains(seen.list(), "all") })
}

// stopped says whether the loop's goroutines ended and its queue shut down.
func stopped(t *testing.T, l *Loop) {
	t.Helper()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers still running")
	}
	if !l.queue.ShuttingDown() {
		t.Error("queue not shut down")
	}
}

func TestStopEndsWorkersAndQueue(t *testing.T) {
	for _, workers := range []int{1, 3} {
		started := make(chan struct{}, 1)
		l := New(Config{Workers: workers, Sync: func(ctx context.Context, _ string) error {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done() // a Sync in flight sees Stop through its ctx
			return ctx.Err()
		}})
		l.Add("a")
		l.Start(context.Background())
		<-started
		l.Stop()
		stopped(t, l)
	}
}

func TestContextEndEndsWorkersAndQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var seen keys
	l := New(Config{Workers: 2, Sync: func(_ context.Context, k string) error { seen.add(k); return nil }})
	l.Add("a")
	l.Start(ctx)
	waitFor(t, "a synced", func() bool { return slices.Contains(seen.list(), "a") })
	cancel()
	stopped(t, l)
	l.Stop() // still safe
}

// Ended before its informers synced: the loop returns without waiting on them, Before included.
func TestStopBeforeSyncAndBefore(t *testing.T) {
	entered := make(chan struct{})
	l := New(Config{
		Sync:   func(context.Context, string) error { t.Error("Sync ran"); return nil },
		Before: func(ctx context.Context) { close(entered); <-ctx.Done() },
		Synced: []cache.InformerSynced{func() bool { return false }},
	})
	l.Start(context.Background())
	<-entered
	l.Stop()
	stopped(t, l)
}

func TestStopWithoutStart(t *testing.T) {
	var nilLoop *Loop
	nilLoop.Stop()
	l := New(Config{Sync: func(context.Context, string) error { return nil }})
	l.Stop()
	if !l.queue.ShuttingDown() {
		t.Error("queue not shut down")
	}
}
