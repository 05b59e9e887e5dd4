package component

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// InProcess adapts an upstream component that runs inside this process: Prepare runs in Init,
// Run in a goroutine until it returns. Upstream components keep global state and rarely return
// cleanly, so Stop cancels the run context and waits only briefly; when Run returns on its own,
// Done fires and the process should end (the service manager restarts it).
type InProcess struct {
	ComponentName string
	Prepare       func(ctx context.Context) error
	Run           func(ctx context.Context) error
	Probe         func(ctx context.Context) error
	StopWait      time.Duration
	// NoStop marks a component whose upstream code ignores cancellation (the kubelet and
	// kube-proxy run on their own contexts): Stop cancels and returns, the process exit ends it.
	NoStop bool
	// Stopped, if set, runs when Stop is called (a NoStop component's logs are then quieted).
	Stopped func()

	once   sync.Once
	cancel context.CancelFunc
	done   chan error
	exited chan struct{}
}

func (p *InProcess) Name() string { return p.ComponentName }

func (p *InProcess) init() {
	p.once.Do(func() {
		p.done = make(chan error, 1)
		p.exited = make(chan struct{})
	})
}

func (p *InProcess) Init(ctx context.Context) error {
	p.init()
	if p.Prepare == nil {
		return nil
	}
	return p.Prepare(ctx)
}

// Start runs Run in the background with a context that lives until Stop.
func (p *InProcess) Start(ctx context.Context) error {
	p.init()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go func() {
		defer close(p.exited)
		err := p.Run(rctx)
		if rctx.Err() != nil {
			return // asked to stop
		}
		if err == nil {
			err = errors.New("returned unexpectedly")
		}
		p.done <- err
	}()
	return nil
}

// Ready runs the probe, if any.
func (p *InProcess) Ready(ctx context.Context) error {
	if p.Probe == nil {
		return nil
	}
	return p.Probe(ctx)
}

// Done fires if Run returns while not stopping.
func (p *InProcess) Done() <-chan error {
	p.init()
	return p.done
}

// Stop cancels Run and waits up to StopWait (default 5s) for it to return.
func (p *InProcess) Stop(ctx context.Context) error {
	p.init()
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	if p.Stopped != nil {
		p.Stopped()
	}
	if p.NoStop {
		return nil
	}
	wait := p.StopWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	select {
	case <-p.exited:
	case <-time.After(wait):
		return fmt.Errorf("did not stop within %s", wait)
	case <-ctx.Done():
	}
	return nil
}

var _ interface {
	Component
	Readier
	Dier
} = (*InProcess)(nil)

// GetOK is a readiness probe's request: nil when url answers 200 through client.
func GetOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
