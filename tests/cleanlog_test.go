package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestCleanLog: a user reads each ERROR as a fault, so a healthy cluster's life logs none, and
// no FATAL: a server's cold start, a minute idle, a SIGTERM stop (exit 0), a warm restart,
// an agent's join, and both stopping. Each phase's lines are checked on their own, so a
// failure names the phase.
func TestCleanLog(t *testing.T) {
	c := checkedCluster(t)
	s1 := c.AddNode("s1", "server")
	t.Cleanup(s1.Stop)
	var a1 *harness.Node
	t.Cleanup(func() {
		if a1 != nil {
			a1.Stop()
		}
	})
	mark := 0
	phase := func(name string, n *harness.Node, from int) {
		t.Helper()
		if bad := problems(n.Log()[from:]); bad != "" {
			t.Errorf("%s: %s logged ERROR or FATAL lines:\n%s", name, n.Name, bad)
		}
	}
	settled := func(n *harness.Node) {
		t.Helper()
		waitReady(t, s1, n.Name, 3*time.Minute)
		harness.Eventually(t, 3*time.Minute, "every system pod running", func() error {
			out, err := s1.Kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName="+n.Name, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}")
			if err != nil {
				return err
			}
			for _, p := range strings.Fields(out) {
				if !strings.HasSuffix(p, "=Running") && !strings.HasSuffix(p, "=Succeeded") {
					return fmt.Errorf("pods: %s", out)
				}
			}
			return nil
		})
		time.Sleep(20 * time.Second) // what start-up work remains (the aggregator's first probes)
	}

	s1.Start()
	settled(s1)
	phase("cold start", s1, mark)
	mark = len(s1.Log())
	time.Sleep(time.Minute)
	phase("a minute idle", s1, mark)
	mark = len(s1.Log())
	s1.Stop()
	if err := s1.ExitErr(); err != nil {
		t.Errorf("SIGTERM stop: %v", err)
	}
	phase("stop", s1, mark)

	mark = len(s1.Log())
	s1.Start()
	settled(s1)
	phase("warm restart", s1, mark)

	mark = len(s1.Log())
	a1 = c.AddNode("a1", "agent", "--server", s1.URL(), "--token", agentToken(t, s1))
	a1.Start()
	settled(a1)
	phase("agent join (server side)", s1, mark)
	phase("agent join", a1, 0)

	mark, amark := len(s1.Log()), len(a1.Log())
	a1.Stop()
	if err := a1.ExitErr(); err != nil {
		t.Errorf("agent SIGTERM stop: %v", err)
	}
	phase("agent stop", a1, amark)
	s1.Stop()
	if err := s1.ExitErr(); err != nil {
		t.Errorf("second SIGTERM stop: %v", err)
	}
	phase("server stop", s1, mark)
}

// problems is a log's ERROR and FATAL lines.
func problems(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, " ERROR ") || strings.Contains(l, " FATAL ") || strings.HasPrefix(l, "panic: ") {
			if len(l) > 400 {
				l = l[:400] + " …"
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
