package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/serverjoin"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Join is a server joining an embedded-etcd cluster (--server), checked before anything is
// written: the cluster's bootstrap data, fetched from the server named and opened with the
// token. nil when this server is no new member.
type Join struct {
	data   *bootstrap.Data
	client serverjoin.Client // adds this server as a member when etcd starts
	// passwordFile and fresh: a node password made for this join is kept before the member
	// add records it, so that a start failing after it does not lock the name out.
	passwordFile string
	fresh        bool
}

// addMember keeps a new node password, then asks for this server's etcd member.
func (j *Join) addMember(ctx context.Context, name, peerURL string) (string, error) {
	if j.fresh {
		if err := join.SaveNodePassword(j.passwordFile, j.client.Password); err != nil {
			return "", err
		}
		j.fresh = false
	}
	return j.client.AddMember(ctx, name, peerURL)
}

// checkJoin fetches the bootstrap data a joining server needs, so that a wrong token or an
// unreachable server stops the start with one line and nothing written. A server whose etcd
// data dir holds a member already is a member: it just starts.
func checkJoin(c *config.Control) (*Join, error) {
	if c.JoinServer == "" {
		return nil, nil
	}
	if _, err := os.Stat(datastore.MemberDir(c.Dirs.EtcdDataDir())); err == nil {
		return nil, nil
	}
	if _, err := os.Stat(c.Dirs.DBFile()); err == nil {
		return nil, fmt.Errorf("--server: this machine has a datastore of its own (%s) and a joining server starts empty: move it away, or keep it with --cluster-init instead", c.Dirs.DBFile())
	}
	t := *c.Token // config requires it with --server
	pw, fresh, err := join.NodePassword(c.NodePasswordFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := serverjoin.Client{Server: c.JoinServer, Token: t, Password: pw}
	d, err := client.Bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkAgentToken(c.AgentToken, d); err != nil {
		return nil, err
	}
	if err := d.Check(c.Cluster, c.SecretsProvider != ""); err != nil {
		return nil, err
	}
	return &Join{data: d, client: client, passwordFile: c.NodePasswordFile, fresh: fresh}, nil
}

// etcdDatastore is the embedded etcd component: the first member (migrating a SQLite
// datastore left by earlier starts), a member joining through --server, or a member
// restarting on its data dir.
func (s *Server) etcdDatastore() *datastore.Etcd {
	c := s.Cfg.Control
	cfg := datastore.EtcdConfig{Name: c.NodeName, DataDir: c.Dirs.EtcdDataDir(), Socket: c.Dirs.KineSocket(),
		NodeIP: c.NodeIP, TLSDir: c.Dirs.EtcdTLS(), Log: func(level, msg string) { s.Out.Line("etcd", level, msg) },
		ForceNewCluster: s.forceNewCluster}
	if s.Join != nil { // no member here yet (checkJoin)
		s.Join.client.Log = s.Log.With("component", "server-join")
		cfg.Join = s.Join.addMember
	} else if _, err := os.Stat(c.Dirs.DBFile()); err == nil && c.JoinServer == "" {
		cfg.Seed = s.migrate
	}
	return datastore.NewEtcd(cfg)
}

// resetMarker records a membership reset, so that starting again with --cluster-reset does not
// drop members that joined since.
func (s *Server) resetMarker() string {
	return filepath.Join(filepath.Dir(s.Cfg.Control.Dirs.EtcdDataDir()), "reset-done")
}

// resetMembers says whether this start resets the etcd membership (--cluster-reset alone), once:
// the marker it leaves is removed by the next start without the flag.
func (s *Server) resetMembers() bool {
	c := s.Cfg.Control
	if !c.ResetMembers {
		os.Remove(s.resetMarker())
		return false
	}
	if _, err := os.Stat(s.resetMarker()); err == nil {
		s.Log.Warn("etcd membership was reset by an earlier start: starting as the member list is now; remove --cluster-reset")
		return false
	}
	if err := pki.WriteFile(s.resetMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		s.Log.Error("cannot record the membership reset: remove --cluster-reset before the next start", "err", err)
	}
	s.Log.Warn("--cluster-reset: this server starts as the only etcd member; on every other server, move DATA/server/db/etcd away and start it with --server to join again")
	return true
}

// migrate copies the SQLite datastore of earlier starts into etcd, then moves the file aside
// (with its WAL): the next start finds nothing to migrate.
func (s *Server) migrate(ctx context.Context, cli *clientv3.Client) error {
	db := s.Cfg.Control.Dirs.DBFile()
	start := time.Now()
	n, err := datastore.MigrateSQLite(ctx, db, cli)
	if err != nil {
		return fmt.Errorf("migrate %s into etcd: %w", db, err)
	}
	stamp := fmt.Sprintf(".migrated-%d", time.Now().Unix())
	if err := moveDBAside(db, stamp); err != nil {
		return fmt.Errorf("migrated into etcd, but %s stays: %w", db, err)
	}
	s.Log.Info("SQLite datastore migrated into etcd", "keys", n, "took", time.Since(start).Round(time.Millisecond), "old", db+stamp)
	return nil
}

// writeEtcdCredentials makes this member's etcd certificates from the cluster's etcd CA.
func (s *Server) writeEtcdCredentials() error {
	c := s.Cfg.Control
	if !c.Etcd {
		return nil
	}
	_, err := pki.EnsureEtcd(s.etcdSpec())
	return err
}

func (s *Server) etcdSpec() pki.EtcdSpec {
	c := s.Cfg.Control
	return pki.EtcdSpec{Dir: c.Dirs.TLS(), NodeName: c.NodeName, NodeIP: c.NodeIP, LeafLifetime: c.LeafLifetime}
}

// serverJoinHandler serves the server-join calls: the bootstrap data, and adding a member
// through this server's etcd.
func (s *Server) serverJoinHandler(socket string, supervisor kubernetes.Interface) http.Handler {
	c := s.Cfg.Control
	return &serverjoin.Handler{
		Token: func() (token.Token, error) { return s.token.Current() },
		Bind:  join.Passwords{Client: supervisor, Server: true}.Verify,
		Data: func() (*bootstrap.Data, error) {
			d, err := bootstrap.Collect(c.Dirs.ServerDir())
			if err == nil {
				d.Settings = &c.Cluster
			}
			return d, err
		},
		AddMember: func(ctx context.Context, name, peerURL string) (string, error) {
			cli, err := datastore.Client("unix://" + socket)
			if err != nil {
				return "", err
			}
			defer cli.Close()
			initial, err := datastore.AddMember(ctx, cli, name, peerURL)
			if errors.Is(err, datastore.ErrMemberConflict) {
				err = fmt.Errorf("%w: %w", serverjoin.ErrConflict, err)
			}
			return initial, err
		},
		OwnName: c.NodeName, OwnPeerURL: datastore.PeerURL(c.NodeIP, 0),
		Limiter: &join.Limiter{}, Log: s.Log.With("component", "server-join")}
}

// checkAgentToken refuses, before anything is written, an --agent-token other than the one
// the cluster's bootstrap data holds: agents of the cluster join with that one.
func checkAgentToken(given *token.Token, d *bootstrap.Data) error {
	stored, ok := d.Files[bootstrap.AgentTokenFile]
	if given == nil || !ok {
		return nil
	}
	if st, err := token.Parse(string(stored)); err == nil && !st.Matches(*given) {
		return fmt.Errorf("--agent-token differs from the cluster's agent token (the first server's DATA/server/agent-token): leave it out, or give that one")
	}
	return nil
}
