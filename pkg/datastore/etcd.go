package datastore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Ports of the embedded etcd (etcd's own defaults).
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
)

// EtcdConfig is the embedded etcd's slice of the server config.
type EtcdConfig struct {
	Name    string // member name: the node name
	DataDir string // DATA/server/db/etcd
	// Socket is where the apiserver and Outpost's own clients reach etcd, as they reach kine:
	// a unix socket in the root-only runtime dir, so no client certificate is needed there.
	Socket string
	NodeIP net.IP
	// ClientPort and PeerPort: 0 for etcd's 2379 and 2380.
	ClientPort, PeerPort int
	TLSDir               string // DATA/server/tls/etcd: ca, server, peer
	// Join, for a server joining a cluster whose data dir holds no member yet, adds this
	// member through a running server and returns the initial cluster ("name=peerURL,...").
	Join func(ctx context.Context, name, peerURL string) (string, error)
	// ForceNewCluster starts an existing member as the only one (--cluster-reset).
	ForceNewCluster bool
	// Seed runs once etcd serves and before the component is ready (SQLite migration).
	Seed func(ctx context.Context, cli *clientv3.Client) error
	// Log receives etcd's warnings and errors, one line each: level and message.
	Log func(level, msg string)
}

// MemberDir is the member's state under the data dir: present once etcd ran here.
func MemberDir(dataDir string) string { return filepath.Join(dataDir, "member") }

// Etcd is the component: etcd in-process.
type Etcd struct {
	cfg   EtcdConfig
	mu    sync.Mutex
	e     *embed.Etcd
	ready chan struct{}
	died  chan error
	stop  context.CancelFunc
	once  sync.Once
	// stopped mutes etcd's complaints about its listeners closing under it.
	stopped atomic.Bool
}

// NewEtcd returns the component; nothing runs until Start.
func NewEtcd(cfg EtcdConfig) *Etcd { return &Etcd{cfg: cfg} }

func (e *Etcd) Name() string { return "etcd" }

// EtcdEndpoint is what the apiserver's --etcd-servers must say.
func (e *Etcd) EtcdEndpoint() string { return "unix://" + e.cfg.Socket }

// PeerURL is this member's peer address.
func (e *Etcd) PeerURL() string { return PeerURL(e.cfg.NodeIP, e.cfg.PeerPort) }

// PeerURL is the peer address of a member at ip (port 0: 2380).
func PeerURL(ip net.IP, port int) string {
	if port == 0 {
		port = EtcdPeerPort
	}
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

func (e *Etcd) Init(context.Context) error {
	if err := os.MkdirAll(e.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("etcd data dir: %w", err)
	}
	// etcd refuses a data dir others can read.
	if err := os.Chmod(e.cfg.DataDir, 0o700); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Dir(e.cfg.Socket), 0o700)
}

func (e *Etcd) embedConfig() (*embed.Config, error) {
	c := e.cfg
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.DataDir
	ip := c.NodeIP.String()
	https := func(host string, port int) url.URL {
		return url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}
	}
	cport := c.ClientPort
	if cport == 0 {
		cport = EtcdClientPort
	}
	clientURLs := []url.URL{https("127.0.0.1", cport), {Scheme: "unix", Host: c.Socket}}
	if ip != "127.0.0.1" {
		clientURLs = append(clientURLs, https(ip, cport))
	}
	cfg.ListenClientUrls = clientURLs
	cfg.AdvertiseClientUrls = []url.URL{https(ip, cport)}
	peer, err := url.Parse(e.PeerURL())
	if err != nil {
		return nil, err
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.ListenMetricsUrls = nil
	tls := func(name string) string { return filepath.Join(c.TLSDir, name) }
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = tls("server.crt"), tls("server.key")
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = tls("ca.crt"), true
	cfg.PeerTLSInfo.CertFile, cfg.PeerTLSInfo.KeyFile = tls("peer.crt"), tls("peer.key")
	cfg.PeerTLSInfo.TrustedCAFile, cfg.PeerTLSInfo.ClientCertAuth = tls("ca.crt"), true
	// Heartbeats ride on a busy two-core machine beside the whole control plane: a wider
	// election timeout than etcd's 1 s avoids elections from mere scheduling delays.
	cfg.TickMs, cfg.ElectionMs = 250, 2500
	cfg.EnableGRPCGateway = false
	cfg.InitialClusterToken = "outpost"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zapcore.EncoderConfig{LevelKey: "L", MessageKey: "M", EncodeLevel: zapcore.CapitalLevelEncoder, ConsoleSeparator: "\t"}),
		zapcore.AddSync(lineWriter(e.log)), zapcore.WarnLevel)))
	return cfg, nil
}

// quiet are etcd's warnings about settings made on purpose: the root-only unix socket is
// plain, and the gRPC and HTTP servers share the client port.
// A joining learner also reports, until it caught up, that it lacks the schema version and
// cannot be promoted yet.
var quiet = []string{"Running http and grpc server on single port", "scheme is http or unix while",
	"simple token is not cryptographically signed", "Failed to detect schema version", "failed to update storage version",
	"rejecting promote learner", "failed to promote a member"}

// log passes etcd's lines on, except the expected ones and those of its shutdown.
func (e *Etcd) log(level, msg string) {
	if e.cfg.Log == nil || e.stopped.Load() {
		return
	}
	for _, q := range quiet {
		if strings.HasPrefix(msg, q) {
			return
		}
	}
	e.cfg.Log(level, msg)
}

// lineWriter turns etcd's console lines ("LEVEL\tmessage\t{fields}") into Log calls.
type lineWriter func(level, msg string)

func (w lineWriter) Write(p []byte) (int, error) {
	if w == nil {
		return len(p), nil
	}
	level, msg, _ := strings.Cut(strings.TrimRight(string(p), "\n"), "\t")
	w(level[:min(4, len(level))], strings.ReplaceAll(msg, "\t", " "))
	return len(p), nil
}

// Start runs etcd: as the first member of a new cluster, as a member joining one, or on the
// state in its data dir. Readiness (Ready) waits for it to serve and for Seed.
func (e *Etcd) Start(ctx context.Context) error {
	cfg, err := e.embedConfig()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(MemberDir(e.cfg.DataDir))
	fresh := errors.Is(statErr, os.ErrNotExist)
	switch {
	case fresh && e.cfg.Join != nil:
		if cfg.InitialCluster, err = e.cfg.Join(ctx, e.cfg.Name, e.PeerURL()); err != nil {
			return fmt.Errorf("join the etcd cluster: %w", err)
		}
		cfg.ClusterState = embed.ClusterStateFlagExisting
	default:
		cfg.InitialCluster = e.cfg.Name + "=" + e.PeerURL()
		cfg.ForceNewCluster = e.cfg.ForceNewCluster && !fresh
	}
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.mu.Lock()
	e.e, e.stop, e.ready, e.died = srv, cancel, make(chan struct{}), make(chan error, 1)
	e.mu.Unlock()
	go e.watch(rctx, srv)
	return nil
}

// watch marks the component ready once etcd serves (and Seed ran), and reports its death.
func (e *Etcd) watch(ctx context.Context, srv *embed.Etcd) {
	select {
	case <-srv.Server.ReadyNotify():
		if err := promote(ctx, srv); err != nil {
			return
		}
		if e.cfg.Seed != nil {
			if err := e.seed(ctx); err != nil {
				e.died <- err
				return
			}
		}
		close(e.ready)
	case err := <-srv.Err():
		e.died <- fmt.Errorf("etcd: %w", err)
		return
	case <-ctx.Done():
		return
	}
	select {
	case err := <-srv.Err():
		e.died <- fmt.Errorf("etcd: %w", err)
	case <-srv.Server.StopNotify():
		if ctx.Err() == nil {
			e.died <- errors.New("etcd stopped (removed from the cluster?)")
		}
	case <-ctx.Done():
	}
}

// promote makes a member that joined as a learner a voting member once it caught up. A new
// member joins as a learner so that the cluster keeps its quorum while it catches up; the
// call goes to the leader from inside the member (a learner's gRPC API refuses it).
// The leader applies the promotion before this member does, which until then still refuses
// reads as a learner: it is done only once the member itself is no learner.
func promote(ctx context.Context, srv *embed.Etcd) error {
	promoted := false
	for srv.Server.IsLearner() {
		wait := 500 * time.Millisecond // not caught up yet: the leader refuses
		if promoted {
			wait = 20 * time.Millisecond
		} else if _, err := srv.Server.PromoteMember(ctx, uint64(srv.Server.MemberID())); err == nil {
			promoted, wait = true, 20*time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

func (e *Etcd) seed(ctx context.Context) error {
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	return e.cfg.Seed(ctx, cli)
}

// Client is an etcd client on the local socket.
func (e *Etcd) Client() (*clientv3.Client, error) {
	return Client(e.EtcdEndpoint())
}

// Ready reports whether etcd serves (with a quorum) and was seeded.
func (e *Etcd) Ready(ctx context.Context) error {
	e.mu.Lock()
	ready, died := e.ready, e.died
	e.mu.Unlock()
	select {
	case <-ready:
		return nil
	case err := <-died:
		died <- err // keep it for Done
		return err
	default:
		return errors.New("etcd has no quorum yet")
	}
}

// Done reports etcd's death.
func (e *Etcd) Done() <-chan error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.died
}

func (e *Etcd) Stop(context.Context) error {
	e.mu.Lock()
	srv, stop := e.e, e.stop
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	e.once.Do(func() {
		e.stopped.Store(true)
		stop()
		srv.Close()
	})
	return nil
}

var _ component.Component = (*Etcd)(nil)
