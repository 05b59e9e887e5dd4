package join

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Renewer renews a joined node's certificates while it runs, from the server, with the node's
// own credentials; the node's clients reload the files (its kubeconfigs name them).
type Renewer struct {
	Client Client
	Node   Node
	Dir    string
	Log    *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *Renewer) Name() string               { return "node-certificates" }
func (r *Renewer) Init(context.Context) error { return nil }

func (r *Renewer) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			next := r.Check(ctx)
			select {
			case <-ctx.Done():
				return
			case <-time.After(next):
			}
		}
	}()
	return nil
}

// Check renews when the kubelet's client certificate is due and says when to look again.
func (r *Renewer) Check(ctx context.Context) time.Duration {
	raw, err := os.ReadFile(filepath.Join(r.Dir, KubeletClient+".crt"))
	if err != nil {
		r.Log.Warn("read node certificate", "err", err)
		return time.Minute
	}
	cert, err := pki.ParseCert(raw)
	if err != nil {
		r.Log.Warn("read node certificate", "err", err)
		return time.Minute
	}
	interval := pki.CheckInterval(cert.NotAfter.Sub(cert.NotBefore))
	if infos, err := pki.Inspect(r.Dir); err == nil {
		if soon := pki.ExpiringSoon(infos, time.Now()); len(soon) > 0 {
			r.Log.Warn("certificates expire within 30 days: run `outpost certificate check`", "certificates", soon)
		}
	}
	if !pki.RenewalDue(cert, time.Now()) {
		return interval
	}
	st, err := Stored(r.Dir)
	if err == nil {
		var res *Result
		rctx, cancel := context.WithTimeout(ctx, time.Minute) // a server that never answers must not stop the checks
		if res, err = r.Client.Renew(rctx, st, r.Dir, r.Node); err == nil {
			err = res.Write(r.Dir)
		}
		cancel()
	}
	if err != nil {
		if ctx.Err() == nil {
			r.Log.Warn("renew node certificates; retrying", "expires", cert.NotAfter.UTC().Format(time.RFC3339), "err", err)
		}
		return min(interval, 30*time.Second)
	}
	r.Log.Info("renewed node certificates from the server")
	return interval
}

func (r *Renewer) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

var _ component.Component = (*Renewer)(nil)
