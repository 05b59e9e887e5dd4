package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Postgres is a real PostgreSQL server (Debian's postgresql package) on a temp dir, for
// the external-datastore tests; it trusts connections from the test network.
type Postgres struct {
	Addr string // host:port
	cmd  *exec.Cmd
	log  string
}

// postgresBin finds the newest installed PostgreSQL's bin dir.
func postgresBin(t testing.TB) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("PostgreSQL is not installed: run `make deps` (Debian's postgresql package)")
	}
	return dirs[len(dirs)-1]
}

// StartPostgres runs a server listening on listenIP, owned by the postgres user (it refuses
// to run as root), stopped and removed at cleanup.
func StartPostgres(t testing.TB, listenIP string) *Postgres {
	t.Helper()
	bin := postgresBin(t)
	dir, err := os.MkdirTemp("", "outpost-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v %s", err, out)
	}
	hba := filepath.Join(data, "pg_hba.conf")
	f, err := os.OpenFile(hba, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "host all all %s/24 trust\n", listenIP)
	f.Close()
	l, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &Postgres{Addr: net.JoinHostPort(listenIP, fmt.Sprint(port)), log: filepath.Join(dir, "postgres.log")}
	p.cmd = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "postgres"), "-D", data, "-k", sock,
		"-h", listenIP, "-p", fmt.Sprint(port), "-c", "fsync=off", "-c", "max_connections=200",
		// What a stuck client would be stuck on: lock waits and statements slower than 5 s.
		"-c", "log_lock_waits=on", "-c", "log_min_duration_statement=5000")
	logf, _ := os.Create(filepath.Join(dir, "postgres.log"))
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() { // the database's side of a failure: conflicts, deadlocks, dropped connections
			t.Logf("last lines of the postgres log:\n%s", p.LogTail(30))
		}
		// pg_ctl's fast shutdown reaches the postmaster (runuser may not pass a signal on).
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-w").Run()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			exec.Command("pkill", "-KILL", "-u", "postgres", "-f", data).Run()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", p.Addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			t.Fatalf("postgres did not start: %s", strings.TrimSpace(string(b)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// LogTail is the last n lines of the database's log.
func (p *Postgres) LogTail(n int) string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), n)
}

// DSN is kine's endpoint for database db (kine creates it).
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.Addr, db)
}
