package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// loadBalancerChecks: a LoadBalancer Service for the app=web pods gets the nodes' addresses
// and answers on each from this host; a second Service on the same port stays pending with a
// Warning Event naming the first, and takes over when the first is deleted.
func loadBalancerChecks(t *testing.T, kubectl func(...string) (string, error), nodeIPs []string) {
	t.Helper()
	const port = 18081
	dir := t.TempDir()
	create := func(name string) {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		y := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: %d, targetPort: 8080}]\n", name, port)
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := kubectl("apply", "-f", f); err != nil {
			t.Fatalf("create %s: %v: %s", name, err, out)
		}
	}
	ingress := func(name string) []string {
		out, _ := kubectl("get", "svc", name, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		ips := strings.Fields(out)
		slices.Sort(ips)
		return ips
	}
	want := slices.Clone(nodeIPs)
	slices.Sort(want)
	answers := func(name string) {
		t.Helper()
		harness.Eventually(t, time.Minute, name+" admitted on "+strings.Join(want, ","), func() error {
			if got := ingress(name); !slices.Equal(got, want) {
				return fmt.Errorf("ingress %v", got)
			}
			return nil
		})
		c := &http.Client{Timeout: 3 * time.Second}
		for _, ip := range want {
			harness.Eventually(t, time.Minute, name+" answers on "+ip, func() error {
				resp, err := c.Get(fmt.Sprintf("http://%s:%d/", ip, port))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.Contains(string(b), "hello from") {
					return fmt.Errorf("%d %s", resp.StatusCode, b)
				}
				return nil
			})
		}
	}
	create("lb-first")
	answers("lb-first")
	create("lb-second")
	harness.Eventually(t, 30*time.Second, "PortInUse event on lb-second", func() error {
		out, err := kubectl("get", "events", "--field-selector", "involvedObject.name=lb-second,reason=PortInUse",
			"-o", "jsonpath={.items[*].type} {.items[*].message}")
		if err != nil || !strings.HasPrefix(out, "Warning ") || !strings.Contains(out, "Service default/lb-first") {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	if got := ingress("lb-second"); len(got) != 0 {
		t.Errorf("lb-second admitted on the port lb-first holds: %v", got)
	}
	if out, err := kubectl("delete", "svc", "lb-first"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	answers("lb-second")
	if out, err := kubectl("delete", "svc", "lb-second"); err != nil {
		t.Errorf("%v: %s", err, out)
	}
}
