// Package leader runs Outpost's own cluster-wide controllers (manifests, Helm, service load
// balancer, node-password cleanup) on one server at a time when several share a datastore:
// they start once this server holds a Lease in kube-system. A server that loses the Lease
// dies (its Done fires, the service manager restarts it), as upstream's controller-manager
// and scheduler do: the controllers never run twice at once, and none must know how to
// restart in place.
package leader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Elected is the component wrapping the controllers.
type Elected struct {
	Lease      string // kube-system Lease name
	Identity   string // this server's: its node name
	Client     kubernetes.Interface
	Components []component.Component
	Log        *slog.Logger
	// Timings; zero takes upstream's defaults (15 s lease, 10 s renew deadline, 2 s retry).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	cancel  context.CancelFunc // the elector's: releases the Lease
	halt    context.CancelFunc // the controllers' starter's
	stopped chan struct{}      // the elector returned
	ran     chan struct{}      // the controllers' starter returned
	died    chan error
	started []component.Component // written by the starter only, read after ran
}

func (e *Elected) Name() string { return "leader-elected" }

// Init inits every controller: their files are the same on each server.
func (e *Elected) Init(ctx context.Context) error {
	for _, c := range e.Components {
		if err := c.Init(ctx); err != nil {
			return err
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Start campaigns in the background.
func (e *Elected) Start(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	ctx, e.cancel = context.WithCancel(base)
	run, halt := context.WithCancel(base)
	e.halt = halt
	e.stopped, e.ran, e.died = make(chan struct{}), make(chan struct{}), make(chan error, 1)
	lead := make(chan struct{}, 1)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: "kube-system", Name: e.Lease},
		Client:     e.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock: lock, Name: e.Lease, ReleaseOnCancel: true,
		LeaseDuration: orDefault(e.LeaseDuration, 15*time.Second),
		RenewDeadline: orDefault(e.RenewDeadline, 10*time.Second),
		RetryPeriod:   orDefault(e.RetryPeriod, 2*time.Second),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				select {
				case lead <- struct{}{}:
				default:
				}
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					e.die(errors.New("lost the " + e.Lease + " lease: restarting so that one server runs the controllers"))
				}
			},
		},
	}
	le, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return err
	}
	go func() {
		defer close(e.stopped)
		le.Run(ctx)
	}()
	go func() {
		defer close(e.ran)
		select {
		case <-run.Done():
			return
		case <-lead:
		}
		e.Log.Info("leading: starting the cluster-wide controllers", "lease", e.Lease)
		for _, c := range e.Components {
			if err := c.Start(run); err != nil {
				e.die(err)
				return
			}
			e.started = append(e.started, c)
		}
	}()
	return nil
}

func (e *Elected) die(err error) {
	select {
	case e.died <- err:
	default:
	}
}

// Done fires when the lease is lost.
func (e *Elected) Done() <-chan error { return e.died }

// Stop stops the controllers, then gives the Lease up, so another server takes over at once
// but never while these still run.
func (e *Elected) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.halt()
	<-e.ran
	var errs []error
	for i := len(e.started) - 1; i >= 0; i-- {
		errs = append(errs, e.started[i].Stop(ctx))
	}
	e.cancel()
	<-e.stopped
	return errors.Join(errs...)
}

var _ component.Component = (*Elected)(nil)
