package server

import (
	"context"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/encryption"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// encryptionConfigPath is the file the apiserver reads, or "" when encryption is off. Once a
// config exists it stays in use even without --secrets-encryption: the datastore may hold
// Secrets only it can decrypt.
func (s *Server) encryptionConfigPath() string {
	p := s.Cfg.Dirs.EncryptionConfig()
	if s.Cfg.SecretsProvider != "" {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// ensureEncryption makes the key on the first start with --secrets-encryption.
func (s *Server) ensureEncryption() error {
	p := s.encryptionConfigPath()
	if p == "" {
		return nil
	}
	cfg, created, err := encryption.Ensure(p, s.Cfg.SecretsProvider, time.Now(), func(path string, b []byte) error { return pki.WriteFile(path, b, 0o600) })
	if err != nil {
		return err
	}
	s.encryptionNew = created
	if s.Cfg.SecretsProvider == "" {
		s.Log.Warn("secrets encryption stays on although --secrets-encryption is not set: the datastore holds Secrets only its key decrypts", "config", p)
	} else if cfg.Provider != s.Cfg.SecretsProvider {
		s.Log.Warn("secrets encryption keeps its provider: Secrets are encrypted with it", "provider", cfg.Provider, "asked", s.Cfg.SecretsProvider)
	}
	return nil
}

// reencrypt rewrites the Secrets stored before encryption was turned on, once the apiserver
// runs, so none stays in plain text.
type reencrypt struct {
	client kubernetes.Interface
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
			n, err := encryption.ReEncrypt(ctx, r.client)
			if err == nil {
				r.log.Info("secrets encryption turned on: existing Secrets encrypted", "secrets", n)
				return
			}
			r.log.Warn("encrypt existing Secrets; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return nil
}

func (r *reencrypt) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}
