// Package renewer renews the server's leaf certificates while it runs: a server that runs for
// longer than a certificate's lifetime keeps working. Clients pick the new files up
// themselves (the apiserver reloads its serving certificate; kubeconfigs name files).
package renewer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Renewer checks the certificates every Interval.
type Renewer struct {
	// Dirs holds the certificates to watch for expiry (CAs included).
	Dirs []string
	// Renew re-issues whatever is due and names what it wrote; Written runs after each
	// check, for files that embed certificates (the admin kubeconfig): it also carries
	// certificates that `outpost certificate rotate` wrote into them.
	Renew    func() ([]string, error)
	Written  func() error
	Interval time.Duration
	Log      *slog.Logger
	Now      func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ component.Component = (*Renewer)(nil)

func (r *Renewer) Name() string { return "server-certificates" }

func (r *Renewer) Init(context.Context) error {
	if r.Interval <= 0 {
		return fmt.Errorf("certificate check interval %s must be positive", r.Interval)
	}
	return nil
}

// Start checks once at once (a warning belongs at start) and then every Interval.
func (r *Renewer) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		for {
			r.Check()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Check renews what is due and warns of what expires within pki.ExpiryWarning.
func (r *Renewer) Check() {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	renewed, err := r.Renew()
	if err != nil {
		r.Log.Error("renew certificates", "err", err)
	}
	if len(renewed) > 0 {
		r.Log.Info("renewed certificates", "names", renewed)
	}
	if r.Written != nil {
		if err := r.Written(); err != nil {
			r.Log.Error("write files that embed certificates", "err", err)
		}
	}
	for _, d := range r.Dirs {
		infos, err := pki.Inspect(d)
		if err != nil {
			r.Log.Warn("inspect certificates", "dir", d, "err", err)
			continue
		}
		if soon := pki.ExpiringSoon(infos, now); len(soon) > 0 {
			r.Log.Warn("certificates expire within 30 days: run `outpost certificate check`; leaf certificates renew by themselves, a CA does not", "certificates", soon)
		}
	}
}

func (r *Renewer) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}
