// Package secretsencryption makes the key the apiserver encrypts Secrets with and, once the
// apiserver runs, encrypts the Secrets still stored in plain text.
package secretsencryption

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/encryption"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// ConfigPath is the file at path the apiserver reads, or "" when encryption is off. Once a
// config exists it stays in use even without --secrets-encryption (provider ""): the
// datastore may hold Secrets only it can decrypt.
func ConfigPath(path, provider string) string {
	if provider != "" {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}

// Key makes the key on the first start with --secrets-encryption, before the
// apiserver reads it.
type Key struct {
	Path, Provider string
	Log            *slog.Logger
}

func (e *Key) Name() string                { return "secrets-encryption" }
func (e *Key) Start(context.Context) error { return nil }
func (e *Key) Stop(context.Context) error  { return nil }

func (e *Key) Init(context.Context) error {
	cfg, created, err := encryption.Ensure(e.Path, e.Provider, time.Now(), func(path string, b []byte) error { return pki.WriteFile(path, b, 0o600) })
	if err != nil {
		return err
	}
	switch {
	case created:
		e.Log.Info("secrets encryption turned on", "provider", cfg.Provider, "key", cfg.Keys[0].Name, "config", e.Path)
	case e.Provider == "":
		e.Log.Warn("secrets encryption stays on although --secrets-encryption is not set: the datastore holds Secrets only its key decrypts", "config", e.Path)
	case cfg.Provider != e.Provider:
		e.Log.Warn("secrets encryption keeps its provider: Secrets are encrypted with it", "provider", cfg.Provider, "asked", e.Provider)
	}
	return nil
}

// ReEncrypt encrypts, once the apiserver runs, every Secret still stored in plain text: those
// from before encryption was turned on, or left by a start that stopped half-way. It looks at
// the stored values themselves (through the kine socket), so a clean store costs one read.
type ReEncrypt struct {
	Client kubernetes.Interface
	Socket string // kine's
	Log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *ReEncrypt) Name() string               { return "secrets-reencrypt" }
func (r *ReEncrypt) Init(context.Context) error { return nil }

func (r *ReEncrypt) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			plain, err := r.plain(ctx)
			if err == nil && plain == 0 {
				return
			}
			if err == nil {
				var n int
				if n, err = encryption.ReEncrypt(ctx, r.Client); err == nil {
					r.Log.Info("existing Secrets encrypted; their earlier plain-text revisions stay in the datastore until compaction drops them", "plain", plain, "rewritten", n)
					return
				}
			}
			r.Log.Warn("encrypt stored Secrets; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return nil
}

// plain counts the Secrets stored without encryption.
func (r *ReEncrypt) plain(ctx context.Context) (int, error) {
	vals, err := datastore.Values(ctx, r.Socket, "/registry/secrets/")
	if err != nil {
		return 0, fmt.Errorf("read stored Secrets: %w", err)
	}
	n := 0
	for _, v := range vals {
		if !strings.HasPrefix(string(v), "k8s:enc:") {
			n++
		}
	}
	return n, nil
}

func (r *ReEncrypt) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}

var _ component.Component = (*Key)(nil)

var _ component.Component = (*ReEncrypt)(nil)
