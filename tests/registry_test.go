package tests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// registrySetup runs two registries on listenIP with the test image pushed to each: good is
// named with the right password in registries.yaml, and also mirrors docker.io behind an
// endpoint that is down, and quay.io with a rewrite (quay.io/outpost-rw/X is outpost/X
// there); bad is named with a wrong password. It returns the file.
type registrySetup struct {
	good, bad *harness.Registry
	file      string
}

func startRegistries(t *testing.T, img, listenIP string) registrySetup {
	t.Helper()
	good := harness.StartRegistry(t, net.JoinHostPort(listenIP, "0"), "outpost", "s3cret-pull")
	bad := harness.StartRegistry(t, net.JoinHostPort(listenIP, "0"), "outpost", "the-right-one")
	start := time.Now()
	good.Push(t, img, "outpost/optest:v1")
	bad.Push(t, img, "outpost/optest:v1")
	t.Logf("pushed the test image to two registries in %.1fs", time.Since(start).Seconds())
	// A port nothing listens on: the first docker.io mirror endpoint is down.
	ln, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	y := fmt.Sprintf(`mirrors:
  docker.io:
    endpoint: ["https://%s", "https://%s"]
  quay.io:
    endpoint: ["https://%s"]
    rewrite:
      "^outpost-rw/(.*)$": "outpost/$1"
configs:
  "%s":
    auth: {username: outpost, password: s3cret-pull}
    tls: {ca_file: %s}
  "%s":
    auth: {username: outpost, password: not-the-password}
    tls: {ca_file: %s}
`, dead, good.Addr, good.Addr, good.Addr, good.CAFile, bad.Addr, bad.CAFile)
	f := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return registrySetup{good: good, bad: bad, file: f}
}

// registryChecks: pods on node pull the test image from the good registry by its own name,
// through the docker.io mirror (past the endpoint that is down) and through the quay.io
// mirror under a rewritten name (quay.io itself is out of reach); from the bad one the pull
// fails with ErrImagePull and an event naming the refused credentials.
func registryChecks(t *testing.T, kubectl func(...string) (string, error), r registrySetup, node, suffix string) {
	t.Helper()
	placed := ""
	if node != "" {
		placed = "  nodeName: " + node + "\n"
	}
	pod := func(name, image string) string {
		return fmt.Sprintf("---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n%s  terminationGracePeriodSeconds: 1\n"+
			"  containers:\n  - {name: c, image: %q, imagePullPolicy: Always, args: [serve]}\n", name, placed, image)
	}
	own, mirror, rewrite, refused := "pull-own"+suffix, "pull-mirror"+suffix, "pull-rewrite"+suffix, "pull-refused"+suffix
	f := filepath.Join(t.TempDir(), "pods.yaml")
	y := pod(own, r.good.Addr+"/outpost/optest:v1") + pod(mirror, "docker.io/outpost/optest:v1") +
		pod(rewrite, "quay.io/outpost-rw/optest:v1") + pod(refused, r.bad.Addr+"/outpost/optest:v1")
	if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	before := r.good.Pulls.Load()
	start := time.Now()
	if out, err := kubectl("apply", "-f", f); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = kubectl("delete", "pod", own, mirror, rewrite, refused, "--wait=false") })
	for _, p := range []string{own, mirror, rewrite} {
		harness.Eventually(t, 2*time.Minute, p+" running", func() error {
			out, err := kubectl("get", "pod", p, "-o", "jsonpath={.status.phase}")
			if err != nil || out != "Running" {
				return fmt.Errorf("phase %q %v", out, err)
			}
			return nil
		})
		t.Logf("%s Running %.1fs after create (image pulled from the registry)", p, time.Since(start).Seconds())
	}
	if n := r.good.Pulls.Load() - before; n < 3 {
		t.Errorf("the registry answered %d manifest requests, want all three pods'", n)
	}
	harness.Eventually(t, 2*time.Minute, refused+" refused", func() error {
		reason, _ := kubectl("get", "pod", refused, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
		ev, _ := kubectl("get", "events", "--field-selector", "involvedObject.name="+refused, "-o", "jsonpath={.items[*].message}")
		if reason != "ErrImagePull" && reason != "ImagePullBackOff" {
			return fmt.Errorf("waiting reason %q", reason)
		}
		if !strings.Contains(ev, "401") && !strings.Contains(strings.ToLower(ev), "unauthorized") {
			return fmt.Errorf("no event names the auth failure: %s", ev)
		}
		return nil
	})
}
