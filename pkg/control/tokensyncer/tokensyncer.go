// Package tokensyncer runs pkg/tokensync on a server: it takes tokens rotated on other
// servers into this one's token files and finishes rotations once every server has the new
// token.
package tokensyncer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/tokensync"
)

// Keeper stores the current bootstrap data in the datastore (bootstrapdata.Keeper).
type Keeper interface {
	Sync(ctx context.Context) error
}

// Syncer takes a token rotated on any server (`outpost token rotate`, through the
// datastore) into this server's token files within seconds, stores the bootstrap data sealed
// with the new one, and removes what the old one opened once every server has the new one.
type Syncer struct {
	Server   tokensync.Server // its KV is set at Start
	Endpoint string           // the datastore's etcd API (kine's socket)
	Keeper   Keeper           // synced with a new token, so the data opens with it
	Every    time.Duration    // default 5 s
	Log      *slog.Logger

	// keep caches the datastore key of the current cluster token's data (a PBKDF2), by ID.
	keep, keepID string

	cancel context.CancelFunc
	done   chan struct{}
}

func (t *Syncer) Name() string               { return "token-sync" }
func (t *Syncer) Init(context.Context) error { return nil }

func (t *Syncer) Start(ctx context.Context) error {
	kv, err := datastore.Dial(t.Endpoint)
	if err != nil {
		return err
	}
	t.Server.KV = kv
	if t.Every <= 0 {
		t.Every = 5 * time.Second
	}
	ctx, t.cancel = context.WithCancel(context.WithoutCancel(ctx))
	t.done = make(chan struct{})
	go func() {
		defer close(t.done)
		defer kv.Close()
		tick := time.NewTicker(t.Every)
		defer tick.Stop()
		var warned string
		for {
			if err := t.step(ctx); err != nil && ctx.Err() == nil && err.Error() != warned {
				// Said once until it changes: a server that missed a rotation says so every 5 s otherwise.
				warned = err.Error()
				t.Log.Warn("token rotation", "err", err)
			} else if err == nil {
				warned = ""
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

func (t *Syncer) step(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	changed, err := t.Server.Step(ctx)
	if changed {
		t.Log.Info("took a token rotated through the datastore: the old token no longer joins through this server")
		if err := t.Keeper.Sync(ctx); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range []tokensync.Kind{tokensync.Cluster, tokensync.Agent} {
		p, err := tokensync.Pending(ctx, t.Server.KV, k)
		if err != nil || p == nil {
			errs = append(errs, err)
			continue
		}
		keep := ""
		if k == tokensync.Cluster {
			tok, err := t.Server.Files.Cluster.Current()
			if err != nil {
				return err
			}
			if tok.ID != p.To {
				continue
			}
			if t.keepID != tok.ID {
				t.keep, t.keepID = bootstrap.Key(tok), tok.ID
			}
			keep = t.keep
		}
		if done, err := tokensync.Finish(ctx, t.Server.KV, k, keep, t.Server.Now()); err != nil {
			errs = append(errs, err)
		} else if done && !p.Done {
			t.Log.Info("token rotation done on every server: the old token opens nothing", "token", string(k))
		}
	}
	return errors.Join(errs...)
}

func (t *Syncer) Stop(context.Context) error {
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
	return nil
}

var _ component.Component = (*Syncer)(nil)
