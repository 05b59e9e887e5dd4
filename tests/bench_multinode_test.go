package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestBenchMultiNode is part of `make bench`: seconds from `outpost agent` start to its node
// Ready, and pod-to-pod TCP throughput and latency across nodes (flannel vxlan) against the
// same measurement between two pods on one node.
func TestBenchMultiNode(t *testing.T) {
	if os.Getenv("OUTPOST_BENCH") == "" {
		t.Skip("a report, not a test: run `make bench`")
	}
	c := harness.NewCluster(t)
	img, imgName := harness.TestImage(t)
	srv, token := startServer(t, c, img)
	a := startAgent(t, c, img, "a1", token, srv.URL())
	harness.Eventually(t, 3*time.Minute, "agent ready line", func() error {
		return a.WaitLog("Outpost agent is ready", time.Second)
	})
	t.Logf("agent start -> node Ready: %.1f s", time.Since(a.Started()).Seconds())

	var y strings.Builder
	for _, p := range []struct{ name, node, arg string }{{"near", "s1", "netsrv"}, {"far", "a1", "netsrv"}, {"client", "s1", "sleep"}} {
		fmt.Fprintf(&y, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  nodeName: %s\n  containers:\n  - {name: c, image: %s, imagePullPolicy: Never, args: [%q]}\n",
			p.name, p.node, imgName, p.arg)
	}
	apply(t, srv, y.String())
	ips := map[string]string{}
	harness.Eventually(t, 2*time.Minute, "bench pods running", func() error {
		for _, p := range []string{"near", "far", "client"} {
			out, err := srv.Kubectl("get", "pod", p, "-o", "jsonpath={.status.phase} {.status.podIP}")
			f := strings.Fields(out)
			if err != nil || len(f) != 2 || f[0] != "Running" {
				return fmt.Errorf("%s: %q %v", p, out, err)
			}
			ips[p] = f[1]
		}
		return nil
	})
	for _, to := range []string{"near", "far"} {
		out := srv.MustKubectl("exec", "client", "--", "/optest", "netbench", ips[to]+":9000")
		where := "same node"
		if to == "far" {
			where = "across nodes (vxlan)"
		}
		t.Logf("pod-to-pod %s: %s", where, strings.TrimSpace(out))
	}
}
