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

// networkPolicyChecks: in namespace np, a server pod on webNode is reached by two client pods
// (role=allowed on allowedNode, role=other on otherNode; "" lets the scheduler place it). A
// default-deny ingress policy blocks both; an allow policy for role=allowed lets that one
// through and keeps the other out; removing the policies restores both.
func networkPolicyChecks(t *testing.T, kubectl func(...string) (string, error), img, webNode, allowedNode, otherNode string) {
	t.Helper()
	dir := t.TempDir()
	apply := func(name, y string) {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := kubectl("apply", "-f", f); err != nil {
			t.Fatalf("apply %s: %v: %s", name, err, out)
		}
	}
	pod := func(name, labels, node, arg string) string {
		placed := ""
		if node != "" {
			placed = "  nodeName: " + node + "\n"
		}
		return fmt.Sprintf("---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: np, labels: {%s}}\nspec:\n%s"+
			"  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: %s, imagePullPolicy: Never, args: [%q]}\n",
			name, labels, placed, img, arg)
	}
	apply("pods", "apiVersion: v1\nkind: Namespace\nmetadata: {name: np}\n"+
		pod("np-web", "app: np-web", webNode, "serve")+pod("np-allowed", "role: allowed", allowedNode, "sleep")+
		pod("np-other", "role: other", otherNode, "sleep"))
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", "np", "--wait=true", "--timeout=60s") })
	var webIP string
	harness.Eventually(t, 2*time.Minute, "np pods running", func() error {
		for _, p := range []string{"np-web", "np-allowed", "np-other"} {
			out, err := kubectl("-n", "np", "get", "pod", p, "-o", "jsonpath={.status.phase} {.status.podIP}")
			f := strings.Fields(out)
			if err != nil || len(f) != 2 || f[0] != "Running" {
				return fmt.Errorf("%s: %q %v", p, out, err)
			}
			if p == "np-web" {
				webIP = f[1]
			}
		}
		return nil
	})
	reaches := func(from string) bool {
		out, err := kubectl("-n", "np", "exec", from, "--", "/optest", "get", "http://"+webIP+":8080/")
		return err == nil && strings.Contains(out, "hello from np-web")
	}
	expect := func(what string, allowed, other bool) {
		t.Helper()
		harness.Eventually(t, time.Minute, what, func() error {
			if a, o := reaches("np-allowed"), reaches("np-other"); a != allowed || o != other {
				return fmt.Errorf("allowed pod reaches web: %v, other pod: %v", a, o)
			}
			return nil
		})
	}
	expect("both clients reach the web pod before any policy", true, true)
	apply("deny", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: np}\n"+
		"spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n")
	expect("default-deny blocks both", false, false)
	apply("allow", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-chosen, namespace: np}\n"+
		"spec:\n  podSelector: {matchLabels: {app: np-web}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {role: allowed}}}]\n"+
		"    ports: [{port: 8080, protocol: TCP}]\n")
	expect("the allow policy lets role=allowed through only", true, false)
	if out, err := kubectl("-n", "np", "delete", "networkpolicy", "default-deny", "allow-chosen"); err != nil {
		t.Fatalf("delete policies: %v: %s", err, out)
	}
	expect("removing the policies restores traffic", true, true)
}
