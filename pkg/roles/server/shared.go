package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	kinetls "github.com/k3s-io/kine/pkg/tls"
	"github.com/sirupsen/logrus"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// checkShared, for a server on an external datastore, checks before anything is written
// that the datastore answers and that, when it holds a cluster, the token opens it: bad input
// stops the start with one line.
func checkShared(c *config.Control) error {
	if c.Datastore.Endpoint == "" {
		return nil
	}
	s := &Server{Cfg: &config.Server{Control: c}}
	// A database that answers does so at once; kine would retry for minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, done, err := s.sharedKV(ctx, "kine-check.sock")
	if err != nil {
		return err
	}
	defer done()
	d, err := s.clusterData(ctx, kv)
	if err != nil || d == nil {
		return err
	}
	// Secrets encryption is checked on a server's first start only: a cluster may turn it on
	// server by server.
	encrypts := c.SecretsProvider != ""
	if _, err := os.Stat(c.Dirs.TokenFile()); err == nil {
		_, encrypts = d.Files[bootstrap.EncryptionConfigFile]
	}
	return d.Check(c.Cluster, encrypts)
}

// sharedKV is the external datastore, reached through a kine of this process's own on a
// temporary socket before the real one starts: Prepare needs the cluster's bootstrap data
// before it writes the PKI. kine's own retry messages stay quiet meanwhile: the caller says
// what went wrong in one line.
func (s *Server) sharedKV(ctx context.Context, name string) (*datastore.KV, func(), error) {
	c := s.Cfg.Control
	if err := os.MkdirAll(c.Dirs.Runtime, 0o700); err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(c.Dirs.Runtime, name)
	os.Remove(sock)
	level := logrus.GetLevel()
	logrus.SetLevel(logrus.PanicLevel)
	k := datastore.New(datastore.Config{Endpoint: c.Datastore.Endpoint, TLS: kineTLS(c.Datastore), Socket: sock, CompactInterval: time.Hour,
		CompactBatch: c.Datastore.CompactBatch, PollInterval: c.Datastore.PollInterval})
	stop := func() { k.Stop(context.Background()); os.Remove(sock); logrus.SetLevel(level) }
	if err := k.Init(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	// kine pings an unreachable database for minutes, on a context of its own: wait for it
	// only as long as ctx allows (the caller then exits, with the attempt left behind).
	started := make(chan error, 1)
	go func() { started <- k.Start(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("--datastore-endpoint %s does not answer: %w", datastore.Redact(c.Datastore.Endpoint), err)
		}
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("--datastore-endpoint %s does not answer", datastore.Redact(c.Datastore.Endpoint))
	}
	for k.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, fmt.Errorf("--datastore-endpoint %s does not answer", datastore.Redact(c.Datastore.Endpoint))
		case <-time.After(100 * time.Millisecond):
		}
	}
	kv, err := datastore.Dial(k.EtcdEndpoint())
	if err != nil {
		stop()
		return nil, nil, err
	}
	return kv, func() { kv.Close(); stop() }, nil
}

// joinShared runs Prepare's credential steps for a server on an external datastore, which
// other servers may share. When the datastore holds a cluster, its bootstrap data (opened with
// the token) is written first, so this server uses that cluster's CAs and keys; when it holds
// none, this is the first server, and it stores its own, unless another server stored one
// meanwhile, whose data then replaces this server's.
func (s *Server) joinShared() error {
	c := s.Cfg.Control
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	kv, done, err := s.sharedKV(ctx, "kine-bootstrap.sock")
	if err != nil {
		return err
	}
	defer done()
	where := "the datastore at " + datastore.Redact(c.Datastore.Endpoint)
	data, err := s.clusterData(ctx, kv)
	if err != nil {
		return err
	}
	if data == nil {
		if data, err = s.claim(ctx, kv); err != nil {
			return err
		}
	}
	if data != nil {
		if err := data.Write(c.Dirs.ServerDir(), pki.WriteFile); err != nil {
			return err
		}
	}
	if err := s.writeCredentials(); err != nil {
		return err
	}
	t, err := s.ensureToken()
	if err != nil {
		return err
	}
	if data != nil {
		return nil
	}
	d, err := bootstrap.Collect(c.Dirs.ServerDir())
	if err != nil {
		return err
	}
	d.Settings = &c.Cluster
	key := bootstrap.Key(t) // a PBKDF2: once
	blob, err := bootstrap.SealAs(d, t, key)
	if err != nil {
		return err
	}
	created, err := kv.Create(ctx, key, blob)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if created {
		s.Log.Info("first server on the datastore: stored the cluster's bootstrap data")
		return nil
	}
	// Another server started first, at the same moment, with the same token: use its data.
	if data, err = s.openData(ctx, kv, t, where); err != nil {
		return err
	}
	if err := data.Write(c.Dirs.ServerDir(), pki.WriteFile); err != nil {
		return err
	}
	return s.writeCredentials()
}

// claimKey names the server that makes the cluster on an empty datastore: two servers started
// at once must not both make CAs.
const claimKey = "/outpost/bootstrap-claim"

// claim makes this server the datastore's first, or, when another server claimed it, waits
// for that one's bootstrap data (nil: this server is the first, the claim is its own).
func (s *Server) claim(ctx context.Context, kv *datastore.KV) (*bootstrap.Data, error) {
	me := s.Cfg.Control.NodeName
	created, err := kv.Create(ctx, claimKey, []byte(me))
	if err != nil {
		return nil, err
	}
	holder, _, err := kv.Get(ctx, claimKey)
	if err != nil {
		return nil, err
	}
	if created || string(holder) == me { // a restart of the first server finds its own claim
		return nil, nil
	}
	for {
		data, err := s.clusterData(ctx, kv)
		if err != nil || data != nil {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("server %s is making the cluster in the datastore and has not stored its data yet: start it first", holder)
		case <-time.After(time.Second):
		}
	}
}

// clusterData is the cluster's bootstrap data in the datastore, opened with the known token;
// nil when the datastore holds no cluster yet.
func (s *Server) clusterData(ctx context.Context, kv *datastore.KV) (*bootstrap.Data, error) {
	where := "the datastore at " + datastore.Redact(s.Cfg.Control.Datastore.Endpoint)
	keys, err := kv.Keys(ctx, bootstrap.KeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s does not answer: %w", where, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	tok, known := s.knownToken()
	if !known {
		return nil, fmt.Errorf("%s holds a cluster: give its --token to join it", where)
	}
	return s.openData(ctx, kv, tok, where)
}

// knownToken is --token, else the token stored by an earlier start.
func (s *Server) knownToken() (token.Token, bool) {
	c := s.Cfg.Control
	if c.Token != nil {
		return *c.Token, true
	}
	t, err := (&token.File{Path: c.Dirs.TokenFile()}).Current()
	return t, err == nil
}

// openData reads and opens the data sealed with tok (under an older version's name too).
func (s *Server) openData(ctx context.Context, kv *datastore.KV, tok token.Token, where string) (*bootstrap.Data, error) {
	blob, key, err := bootstrap.Find(tok, func(k string) ([]byte, bool, error) {
		b, _, err := kv.Get(ctx, k)
		return b, b != nil, err
	})
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("%s holds a cluster made with another token: give that cluster's --token", where)
	}
	d, err := bootstrap.OpenAs(blob, tok, key)
	if errors.Is(err, bootstrap.ErrWrongToken) {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return d, err
}

// kineTLS is the external datastore's TLS settings in kine's terms.
func kineTLS(d config.Datastore) kinetls.Config {
	return kinetls.Config{CAFile: d.CAFile, CertFile: d.CertFile, KeyFile: d.KeyFile}
}
