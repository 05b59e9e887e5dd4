// Package bootstrapdata keeps the cluster's bootstrap data (CAs, keys, cluster settings),
// sealed with the token, current in the datastore: what a restore on a new machine, or a
// server joining through the datastore, needs.
package bootstrapdata

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Keeper keeps the cluster's bootstrap data, sealed with the token, in the
// datastore: written at start and again whenever the token or a shared file changes
// (rotated token, new encryption key; checked every 30 s, and by each snapshot first), so
// that a snapshot always holds what a restore on a new machine needs.
type Keeper struct {
	ServerDir string
	Tokens    *token.File
	Endpoint  string // the datastore's etcd API (kine's socket)
	// Shared: other servers use the datastore too. Entries of other tokens stay then (a
	// server whose token was rotated elsewhere would otherwise drop the current one), so an
	// old token still opens them until they are deleted by hand.
	Shared bool
	// Settings are the cluster-wide values stored with the files: a joining server checks its
	// own against them.
	Settings *cluster.Settings
	Log      *slog.Logger

	mu     sync.Mutex
	stored [32]byte // hash of what was last stored
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *Keeper) Name() string               { return "bootstrap-data" }
func (b *Keeper) Init(context.Context) error { return nil }

// Start stores the data at once, in the background, then every 30 s when changed. A failure
// is logged and retried: the cluster runs without it, only a restore would lack it.
func (b *Keeper) Start(ctx context.Context) error {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
				b.Log.Warn("storing the bootstrap data in the datastore", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (b *Keeper) Stop(context.Context) error {
	if b.cancel != nil {
		b.cancel()
		<-b.done
	}
	return nil
}

// Sync stores the current data under the current token's key, unless it is stored already,
// and drops entries sealed with earlier tokens.
func (b *Keeper) Sync(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	tok, err := b.Tokens.Current()
	if err != nil {
		return err
	}
	d, err := bootstrap.Collect(b.ServerDir)
	if err != nil {
		return err
	}
	d.Settings = b.Settings
	settings, err := json.Marshal(d.Settings)
	if err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s.%s\n%s\n", tok.ID, tok.Secret, settings)
	for _, n := range d.Names() {
		fmt.Fprintf(h, "%s %d\n", n, len(d.Files[n]))
		h.Write(d.Files[n])
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if sum == b.stored {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := datastore.Dial(b.Endpoint)
	if err != nil {
		return err
	}
	defer kv.Close()
	key := bootstrap.Key(tok) // a PBKDF2: once, for the read, the seal and the cleanup
	cur, _, err := kv.Get(ctx, key)
	if err != nil {
		return err
	}
	if have, err := bootstrap.OpenAs(cur, tok, key); cur == nil || err != nil || !have.Equal(d) {
		blob, err := bootstrap.SealAs(d, tok, key)
		if err != nil {
			return err
		}
		if err := kv.Set(ctx, key, blob); err != nil {
			return err
		}
		b.Log.Info("bootstrap data stored in the datastore", "files", len(d.Files))
	}
	if b.Shared {
		// Other tokens' entries stay (pkg/tokensync removes them once every server has the
		// new token), and so does this token's under the legacy name, kept current: servers
		// of the older version, mid-upgrade, read only that one. The next token rotation
		// removes it.
		if err := b.syncLegacy(ctx, kv, tok, d); err != nil {
			return err
		}
		b.stored = sum
		return nil
	}
	keys, err := kv.Keys(ctx, bootstrap.KeyPrefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k != key {
			if err := kv.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	b.stored = sum
	return nil
}

// syncLegacy rewrites the entry an older version keeps under LegacyKey, when there is one and
// it differs from d.
func (b *Keeper) syncLegacy(ctx context.Context, kv *datastore.KV, tok token.Token, d *bootstrap.Data) error {
	legacy := bootstrap.LegacyKey(tok)
	cur, _, err := kv.Get(ctx, legacy)
	if err != nil || cur == nil {
		return err
	}
	if have, err := bootstrap.OpenAs(cur, tok, legacy); err == nil && have.Equal(d) {
		return nil
	}
	blob, err := bootstrap.SealAs(d, tok, legacy)
	if err != nil {
		return err
	}
	return kv.Set(ctx, legacy, blob)
}

var _ component.Component = (*Keeper)(nil)
