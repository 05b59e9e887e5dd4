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

// TestMultiNode: one server and two agents, each in its own network and mount namespace.
func TestMultiNode(t *testing.T) {
	var c *harness.Cluster
	t.Cleanup(func() { // runs after the cluster's own cleanup
		if left := c.ClusterLeftovers(); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
	c = harness.NewCluster(t)
	srv := c.AddNode("s1", "server")
	srv.Start()
	waitReady(t, srv, "s1", 3*time.Minute)
	b, err := os.ReadFile(filepath.Join(srv.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	var agents []*harness.Node
	for _, name := range []string{"a1", "a2"} {
		a := c.AddNode(name, "agent", "--server", srv.URL(), "--token", token,
			"--node-password-file", filepath.Join(c.Root, name, "node-password"))
		a.Start()
		agents = append(agents, a)
	}
	t.Run("AllNodesReady", func(t *testing.T) {
		for _, a := range agents {
			start := a.Started()
			waitReady(t, srv, a.Name, 3*time.Minute)
			t.Logf("agent %s Ready %.1fs after start", a.Name, time.Since(start).Seconds())
		}
		out := srv.MustKubectl("get", "nodes", "-o", "wide")
		t.Logf("\n%s", out)
	})
	t.Run("AgentRestartRejoins", func(t *testing.T) {
		a := agents[0]
		a.Stop()
		a.Start()
		if err := a.WaitLog("Outpost agent is ready", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

func waitReady(t *testing.T, srv *harness.Node, node string, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "node "+node+" Ready", func() error {
		out, err := srv.Kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil || strings.TrimSpace(out) != "True" {
			return fmt.Errorf("ready=%q %v", out, err)
		}
		return nil
	})
}
