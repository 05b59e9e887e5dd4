package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestBenchEtcd is part of `make bench`: a server on embedded etcd (--cluster-init): start,
// idle memory, API write latency and snapshot time, as TestBench measures them on SQLite.
func TestBenchEtcd(t *testing.T) {
	idle := benchIdle(t)
	s := harness.NewServer(t, "--cluster-init")
	t.Cleanup(s.Cleanup)
	img, _ := harness.TestImage(t)
	os.MkdirAll(filepath.Join(s.DataDir(), "agent", "images"), 0o755)
	copyFile(t, img, filepath.Join(s.DataDir(), "agent", "images", "optest.tar"))
	var rows [][2]string
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }

	add("etcd: node Ready, cold first start (--cluster-init; to the first heartbeat)", fmt.Sprintf("%.1f s", startTimes(t, s).heartbeat))
	componentsReady(t, s)
	time.Sleep(idle)
	mem := measureTree(t, s)
	add(fmt.Sprintf("etcd: idle RSS after %s (outpost, containerd, shims: %d procs)", idle, mem.roots), fmt.Sprintf("%.0f MiB", mem.rootsRSS))
	add(fmt.Sprintf("etcd: idle PSS after %s of the outpost process (etcd inside)", idle), fmt.Sprintf("%.0f MiB", mem.by["outpost"]))
	w50, w99 := apiWrites(t, s, 50, time.Minute)
	add("etcd: API writes (ConfigMap create, 50/s for 60 s): p50 / p99", fmt.Sprintf("%.1f / %.1f ms", w50, w99))
	add("etcd: etcd-snapshot save on the running server (after those writes)", fmt.Sprintf("%.2f s", snapshotTime(t, s)))
	printRows(rows)
}

// TestBenchFailover is part of `make bench`: three servers on embedded etcd, and two on one
// PostgreSQL; the first server is SIGKILLed and the time until a write through a survivor
// succeeds is measured (each try bounded to 1 s).
func TestBenchFailover(t *testing.T) {
	if os.Getenv("OUTPOST_BENCH") == "" {
		t.Skip("a report, not a test: run `make bench`")
	}
	var rows [][2]string
	t.Run("etcd", func(t *testing.T) {
		c := harness.NewCluster(t)
		s1 := c.AddNode("s1", "server", "--disable-agent", "--cluster-init")
		s1.Start()
		serving(t, s1)
		tok := strings.TrimSpace(readFile(t, filepath.Join(s1.DataDir(), "server", "token")))
		nodes := []*harness.Node{s1}
		for _, name := range []string{"s2", "s3"} {
			s := c.AddNode(name, "server", "--disable-agent", "--server", s1.URL(), "--token", tok)
			s.Start()
			serving(t, s)
			nodes = append(nodes, s)
		}
		t.Cleanup(func() {
			for _, n := range nodes {
				n.Stop()
			}
		})
		rows = append(rows, [2]string{"failover, 3 servers on embedded etcd: first SIGKILLed -> write through the second", fmt.Sprintf("%.1f s", failover(t, s1, nodes[1]))})
	})
	t.Run("postgres", func(t *testing.T) {
		c := harness.NewCluster(t)
		pg := harness.StartPostgres(t, "10.99.0.1")
		dsn := pg.DSN("outpost")
		s1 := c.AddNode("s1", "server", "--disable-agent", "--datastore-endpoint", dsn)
		s1.Start()
		serving(t, s1)
		tok := strings.TrimSpace(readFile(t, filepath.Join(s1.DataDir(), "server", "token")))
		s2 := c.AddNode("s2", "server", "--disable-agent", "--datastore-endpoint", dsn, "--token", tok)
		s2.Start()
		serving(t, s2)
		t.Cleanup(func() { s2.Stop(); s1.Stop() })
		rows = append(rows, [2]string{"failover, 2 servers on PostgreSQL: first SIGKILLed -> write through the second", fmt.Sprintf("%.1f s", failover(t, s1, s2))})
	})
	printRows(rows)
}

// failover kills victim and returns seconds until a write through survivor succeeds.
func failover(t *testing.T, victim, survivor *harness.Node) float64 {
	t.Helper()
	survivor.MustKubectl("create", "configmap", "before")
	victim.Kill()
	killed := time.Now()
	harness.Eventually(t, 60*time.Second, "a write through "+survivor.Name, func() error {
		_, err := survivor.Kubectl("--request-timeout=1s", "create", "configmap", "after")
		if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
			return nil
		}
		return err
	})
	return time.Since(killed).Seconds()
}

func printRows(rows [][2]string) {
	fmt.Println()
	fmt.Println("| measurement | value |")
	fmt.Println("|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s |\n", r[0], r[1])
	}
}
