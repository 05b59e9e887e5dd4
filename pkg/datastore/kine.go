// Package datastore runs kine in-process: SQLite in WAL mode by default, or an external
// database, served to the apiserver as etcd on a unix socket.
package datastore

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kinetls "github.com/k3s-io/kine/pkg/tls"
	"github.com/sirupsen/logrus"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/logging"
)

// Config is kine's slice of the server config.
type Config struct {
	Endpoint        string // external DSN; "" for SQLite at DBFile
	TLS             kinetls.Config
	DBFile          string
	Socket          string
	CompactInterval time.Duration
	CompactBatch    int64
	PollInterval    time.Duration
	// Synchronous is SQLite's synchronous mode: "FULL" (default: power-safe, each commit
	// reaches the disk before it is acknowledged) or "NORMAL" (k3s's: WAL commits since the
	// last checkpoint can be lost when power fails).
	Synchronous string
	// CompactTimeout bounds one compaction transaction (0: 5 s, k3s's).
	CompactTimeout time.Duration
	// Guard hears kine's logrus Fatal calls, which kine makes where it should return an error
	// (a compaction whose commit failed); kine is then started again. Nil: no restarts.
	Guard *logging.Guard
}

// Datastore is the component: kine in-process.
type Datastore struct {
	cfg Config

	mu     sync.Mutex
	cancel context.CancelFunc // the running kine's
	wg     *sync.WaitGroup    // its goroutines

	life     context.Context // ends at Stop: the supervisor, and a kine still starting, give up
	end      context.CancelFunc
	failed   chan string // kine's Fatal messages (Config.Guard)
	sup      sync.WaitGroup
	restarts atomic.Int64
}

// New returns the component; nothing runs until Start.
func New(cfg Config) *Datastore {
	life, end := context.WithCancel(context.Background())
	return &Datastore{cfg: cfg, life: life, end: end}
}

func (k *Datastore) Name() string { return "kine" }

// EtcdEndpoint is what the apiserver's --etcd-servers must say.
func (k *Datastore) EtcdEndpoint() string { return "unix://" + k.cfg.Socket }

// DSN is the kine endpoint: the external one, or SQLite with WAL and a busy timeout.
func (k *Datastore) DSN() string {
	if k.cfg.Endpoint != "" {
		return k.cfg.Endpoint
	}
	return "sqlite://" + k.cfg.DBFile + "?" + sqliteParams(k.cfg.Synchronous)
}

// sqliteParams are the connection settings of the SQLite datastore: WAL, a busy timeout,
// and the synchronous mode (FULL unless told otherwise).
func sqliteParams(synchronous string) string {
	if synchronous == "" {
		synchronous = "FULL"
	}
	return "_journal_mode=WAL&_busy_timeout=30000&_synchronous=" + synchronous + "&_txlock=immediate&cache=shared"
}

// SQLiteSettings reads the journal and synchronous modes back from the SQLite datastore,
// through a connection opened with the DSN kine is given. The journal mode is the file's;
// the synchronous mode is each connection's, so this shows what the DSN asks of kine's.
func (k *Datastore) SQLiteSettings(ctx context.Context) (journal, synchronous string, err error) {
	if k.cfg.Endpoint != "" {
		return "", "", fmt.Errorf("not a SQLite datastore")
	}
	db, err := sql.Open("sqlite3", "file:"+k.cfg.DBFile+"?"+sqliteParams(k.cfg.Synchronous))
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
		return "", "", fmt.Errorf("datastore settings: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		return "", "", fmt.Errorf("datastore settings: %w", err)
	}
	return journal, [...]string{"OFF", "NORMAL", "FULL", "EXTRA"}[min(max(mode, 0), 3)], nil
}

func (k *Datastore) Init(context.Context) error {
	logrus.SetFormatter(&tagFormatter{})
	if k.cfg.Endpoint == "" {
		if err := os.MkdirAll(filepath.Dir(k.cfg.DBFile), 0o700); err != nil {
			return fmt.Errorf("create datastore dir: %w", err)
		}
	}
	return os.MkdirAll(filepath.Dir(k.cfg.Socket), 0o700)
}

func (k *Datastore) Start(ctx context.Context) error {
	if err := k.listen(k.DSN()); err != nil {
		return err
	}
	if k.cfg.Endpoint == "" { // say how safe the writes are
		journal, sync, err := k.SQLiteSettings(ctx)
		if err != nil {
			logrus.Warnf("SQLite datastore settings: %v", err)
		} else {
			logrus.Infof("SQLite datastore %s: journal=%s synchronous=%s", k.cfg.DBFile, journal, sync)
		}
	}
	if k.cfg.Guard != nil {
		k.failed = make(chan string, 1)
		k.cfg.Guard.Handle(k.Name(), k.fail)
		k.sup.Add(1)
		go k.supervise()
	}
	return nil
}

// etcdVersion is the etcd version kine claims to be. From 3.5.13 the apiserver trusts etcd's
// watch-progress answers: its watch cache serves consistent reads once a progress answer says
// it has seen everything. kine answers those from a revision that only its own writes and its
// poll loop move, with a compare-and-swap that fails for good when another server's write
// lands while it starts; it then answers a revision far behind the database (reproduced in
// TestSharedDatabaseProgress), the apiserver's informers never sync, and the joining server
// exits a minute later. On a shared database kine claims 3.5.12: the apiserver asks no
// progress of it and reads consistent lists from the database instead. An external datastore
// is one other servers may write.
func (k *Datastore) etcdVersion() string {
	if k.cfg.Endpoint != "" {
		return "3.5.12"
	}
	return "3.5.13"
}

// Ready dials the socket the apiserver will use.
func (k *Datastore) Ready(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", k.cfg.Socket)
	if err != nil {
		return err
	}
	return c.Close()
}

func (k *Datastore) Stop(context.Context) error {
	k.end()
	k.sup.Wait()
	return k.halt()
}

// Redact hides a DSN's password in messages.
func Redact(dsn string) string { return redact(dsn) }

func redact(dsn string) string {
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if i := strings.Index(dsn, "://"); i > 0 && i < at {
			return dsn[:i+3] + "***" + dsn[at:]
		}
	}
	return dsn
}

// tagFormatter gives kine's logrus lines the same shape as every other component's.
type tagFormatter struct{}

func (tagFormatter) Format(e *logrus.Entry) ([]byte, error) {
	msg := e.Message
	if len(msg) > maxKineLine { // kine logs a failed transaction whole, the value, then why
		half := maxKineLine / 2
		msg = strings.ToValidUTF8(msg[:half]+fmt.Sprintf(" … (%d bytes) … ", len(msg)-2*half)+msg[len(msg)-half:], "")
	}
	return []byte(fmt.Sprintf("%s [kine] %s %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), levelName(e.Level), msg)), nil
}

// levelName is a logrus level as every other line names it.
func levelName(l logrus.Level) string {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return "FATAL"
	case logrus.ErrorLevel:
		return "ERROR"
	case logrus.WarnLevel:
		return "WARN"
	case logrus.InfoLevel:
		return "INFO"
	}
	return "DEBUG"
}

// maxKineLine bounds a kine log line: a failed write's line would hold the object (up to
// 1.5 MB); its start and its end (the error) are kept.
const maxKineLine = 2048

var _ component.Component = (*Datastore)(nil)
