package server

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

// encryptionConfigPath is the file the apiserver reads, or "" when encryption is off. Once a
// config exists it stays in use even without --secrets-encryption: the datastore may hold
// Secrets only it can decrypt.
func (s *Server) encryptionConfigPath() string {
	p := s.Cfg.Control.Dirs.EncryptionConfig()
	if s.Cfg.Control.SecretsProvider != "" {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// encryptionKey makes the key on the first start with --secrets-encryption, before the
// apiserver reads it.
type encryptionKey struct {
	path, provider string
	log            *slog.Logger
}

func (e *encryptionKey) Name() string                { return "secrets-encryption" }
func (e *encryptionKey) Start(context.Context) error { return nil }
func (e *encryptionKey) Stop(context.Context) error  { return nil }

func (e *encryptionKey) Init(context.Context) error {
	cfg, created, err := encryption.Ensure(e.path, e.provider, time.Now(), func(path string, b []byte) error { return pki.WriteFile(path, b, 0o600) })
	if err != nil {
		return err
	}
	switch {
	case created:
		e.log.Info("secrets encryption turned on", "provider", cfg.Provider, "key", cfg.Keys[0].Name, "config", e.path)
	case e.provider == "":
		e.log.Warn("secrets encryption stays on although --secrets-encryption is not set: the datastore holds Secrets only its key decrypts", "config", e.path)
	case cfg.Provider != e.provider:
		e.log.Warn("secrets encryption keeps its provider: Secrets are encrypted with it", "provider", cfg.Provider, "asked", e.provider)
	}
	return nil
}

// reencrypt encrypts, once the apiserver runs, every Secret still stored in plain text: those
// from before encryption was turned on, or left by a start that stopped half-way. It looks at
// the stored values themselves (through the kine socket), so a clean store costs one read.
type reencrypt struct {
	client kubernetes.Interface
	socket string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *reencrypt) Name() string               { return "secrets-reencrypt" }
func (r *reencrypt) Init(context.Context) error { return nil }

func (r *reencrypt) Start(ctx context.Context) error {
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
				if n, err = encryption.ReEncrypt(ctx, r.client); err == nil {
					r.log.Info("existing Secrets encrypted; their earlier plain-text revisions stay in the datastore until compaction drops them", "plain", plain, "rewritten", n)
					return
				}
			}
			r.log.Warn("encrypt stored Secrets; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return nil
}

// plain counts the Secrets stored without encryption.
func (r *reencrypt) plain(ctx context.Context) (int, error) {
	vals, err := datastore.Values(ctx, r.socket, "/registry/secrets/")
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

func (r *reencrypt) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}

var _ component.Component = (*encryptionKey)(nil)

var _ component.Component = (*reencrypt)(nil)
