package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestHAPostgres: two servers on one real PostgreSQL share a cluster (the second joins with
// the token only: CAs and keys come from the datastore); an agent joined through the first
// learns the second from the kubernetes EndpointSlice. The first server is SIGKILLed: writes
// through the second work within 30 s, what was written before is there, the agent keeps its
// pod and reports Ready through the second; the first comes back and serves again.
func TestHAPostgres(t *testing.T) {
	c := checkedCluster(t)
	pg := harness.StartPostgres(t, "10.99.0.1")
	img, imgName := harness.TestImage(t)
	dsn := pg.DSN("outpost")
	s1, tok := startServer(t, c, img, "--datastore-endpoint", dsn)
	s2 := c.AddNode("s2", "server", "--disable-agent", "--datastore-endpoint", dsn, "--token", tok)
	s2.Start()
	waitServing(t, s2, func() string { return "last lines of the postgres log:\n" + pg.LogTail(30) })
	a1 := startAgent(t, c, img, "a1", tok, s1.URL())
	// The nodes stop before the database does (cleanups run last-registered first).
	t.Cleanup(func() {
		for _, n := range []*harness.Node{a1, s2, s1} {
			n.Stop()
		}
	})
	waitReady(t, s1, "a1", 3*time.Minute)

	t.Run("OneClusterTwoServers", func(t *testing.T) {
		s1.MustKubectl("create", "configmap", "before-kill", "--from-literal=k=v")
		harness.Eventually(t, 30*time.Second, "s2 reads what s1 wrote", func() error {
			_, err := s2.Kubectl("get", "configmap", "before-kill")
			return err
		})
		apply(t, s1, fmt.Sprintf(podYAML, "web-a1", "a1", imgName))
		harness.Eventually(t, 2*time.Minute, "pod on a1 running", func() error {
			out, err := s2.Kubectl("get", "pod", "web-a1", "-o", "jsonpath={.status.phase}")
			if err != nil || out != "Running" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
		harness.Eventually(t, time.Minute, "a1 knows both servers", func() error {
			if !strings.Contains(a1.Log(), s2.IP+":6443") {
				return fmt.Errorf("a1's load balancer has not learned s2")
			}
			return nil
		})
	})

	t.Run("FirstServerKilled", func(t *testing.T) {
		// Under a steady write load through s1: every write it acknowledged is kept.
		load := harness.StartWriteLoad(t, s1.Kubeconfig, s1.URL(), "pg-kill")
		time.Sleep(5 * time.Second)
		s1.Kill()
		killed := time.Now()
		acked, failed := load.Stop()
		defer func() {
			missing, err := harness.Missing(t, s2.Kubeconfig, s2.URL(), "pg-kill", acked)
			if err != nil || len(acked) < 10 || len(missing) > 0 {
				t.Errorf("%d writes acknowledged by s1 before its kill, lost: %v (%v)", len(acked), missing, err)
			}
			t.Logf("SIGKILL under load: %d acknowledged writes all kept (%d failed)", len(acked), failed)
		}()
		harness.Eventually(t, 30*time.Second, "writes through s2", func() error {
			_, err := s2.Kubectl("create", "configmap", "after-kill")
			if err != nil && strings.Contains(err.Error(), "AlreadyExists") {
				return nil
			}
			return err
		})
		t.Logf("s2 took a write %.1fs after s1 was killed", time.Since(killed).Seconds())
		if out, err := s2.Kubectl("get", "configmap", "before-kill", "-o", "jsonpath={.data.k}"); err != nil || out != "v" {
			t.Errorf("object written before the kill: %q %v", out, err)
		}
		// The agent's heartbeat goes on, through s2 only.
		waitRenewed(t, s2, "a1", killed.Add(2*time.Second), 90*time.Second)
		t.Logf("a1 heartbeat through s2 %.1fs after the kill", time.Since(killed).Seconds())
		waitReady(t, s2, "a1", time.Minute)
		if out, err := s2.Kubectl("get", "pod", "web-a1", "-o", "jsonpath={.status.phase}"); err != nil || out != "Running" {
			t.Errorf("a1's pod after the kill: %q %v", out, err)
		}
	})

	t.Run("FirstServerRejoins", func(t *testing.T) {
		restarted := time.Now()
		s1.Start()
		waitRenewed(t, s1, "s1", restarted, 3*time.Minute)
		waitReady(t, s1, "s1", time.Minute)
		if _, err := s1.Kubectl("get", "configmap", "after-kill"); err != nil {
			t.Errorf("s1 does not see what s2 wrote while it was down: %v", err)
		}
	})
}
