package tests

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// TestConformance runs the upstream Kubernetes conformance specs against a two-node cluster (a
// server and an agent, each in its own network namespace), with every image the specs use built
// locally, imported at start and served by a local mirror: no registry outside. It runs only
// under `make conformance`, which builds the runner and the images into OUTPOST_CONFORMANCE
// (tests/conformance/build.sh, images.sh).
//
//	OUTPOST_CONFORMANCE  dir with e2e.test, ginkgo and images/*.tar (required)
//	CONFORMANCE_FOCUS    ginkgo focus (default `\[Conformance\]`)
//	CONFORMANCE_SKIP     ginkgo skip (default none: [Serial] included)
//	CONFORMANCE_PROCS    parallel ginkgo processes (default 4; [Serial] specs run alone after)
//	CONFORMANCE_TIMEOUT  the suite's limit (default 4h)
//
// The junit report, e2e.log and each node's log stay in OUTPOST_CONFORMANCE/last.
func TestConformance(t *testing.T) {
	dir := os.Getenv("OUTPOST_CONFORMANCE")
	if dir == "" {
		t.Skip("OUTPOST_CONFORMANCE is not set: run `make conformance`")
	}
	images, _ := filepath.Glob(filepath.Join(dir, "images", "*.tar"))
	if len(images) == 0 {
		t.Fatalf("no images in %s/images: run tests/conformance/images.sh", dir)
	}
	last := filepath.Join(dir, "last")
	if err := os.RemoveAll(last); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(last, "report"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := checkedCluster(t)
	// Specs that pull with policy Always (the image-volume one) reach registry.k8s.io: a real
	// registry on the host's end of the test network stands in for it as a mirror, serving the
	// same archives the nodes import.
	reg := harness.StartRegistry(t, "10.99.0.1:0", "outpost", "conformance")
	for _, img := range images {
		reg.PushArchive(t, img)
	}
	mirror := filepath.Join(c.Root, "registries.yaml")
	if err := os.WriteFile(mirror, []byte(fmt.Sprintf("mirrors:\n  registry.k8s.io:\n    endpoint: [\"https://%s\"]\nconfigs:\n  %q:\n    auth: {username: outpost, password: conformance}\n    tls: {ca_file: %s}\n",
		reg.Addr, reg.Addr, reg.CAFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the cluster's cleanup removes its root
		for _, n := range c.Nodes {
			copyFile(t, n.LogPath, filepath.Join(last, n.Name+".log"))
		}
	})
	seed := func(n *harness.Node) {
		d := filepath.Join(n.DataDir(), "agent", "images")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, img := range images {
			copyFile(t, img, filepath.Join(d, filepath.Base(img)))
		}
	}
	srv := c.AddNode("s1", "server", "--private-registry", mirror)
	seed(srv)
	srv.Start()
	waitReady(t, srv, "s1", 5*time.Minute)
	token, err := os.ReadFile(filepath.Join(srv.DataDir(), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.AddNode("a1", "agent", "--token", strings.TrimSpace(string(token)), "--server", srv.URL(),
		"--node-password-file", filepath.Join(c.Root, "a1", "node-password"), "--private-registry", mirror)
	seed(a)
	a.Start()
	waitReady(t, srv, "a1", 5*time.Minute)
	harness.Eventually(t, 3*time.Minute, "coredns ready", func() error {
		out, err := srv.Kubectl("-n", "kube-system", "get", "deploy", "coredns", "-o", "jsonpath={.status.readyReplicas}")
		if err != nil || strings.TrimSpace(out) != "1" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	// The e2e runner is on the host: a kubeconfig that names the server's address on the test
	// network (the admin one names its loopback).
	kc := filepath.Join(last, "kubeconfig.yaml")
	b, err := os.ReadFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`server: https://[^\s]+`).ReplaceAll(b, []byte("server: "+srv.URL()))
	if err := os.WriteFile(kc, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// ginkgo ends before go test's own deadline, so the cluster's cleanup still runs
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-5*time.Minute))
		defer cancel()
	}
	run := exec.CommandContext(ctx, filepath.Join(dir, "ginkgo"), "--procs="+env("CONFORMANCE_PROCS", "4"), "--no-color",
		"--timeout="+env("CONFORMANCE_TIMEOUT", "4h"), "--focus="+env("CONFORMANCE_FOCUS", `\[Conformance\]`),
		"--skip="+os.Getenv("CONFORMANCE_SKIP"), filepath.Join(dir, "e2e.test"), "--",
		"--kubeconfig", kc, "--provider=local", "--report-dir", filepath.Join(last, "report"))
	// ginkgo, interrupted, ends its e2e.test processes itself
	run.Cancel = func() error { return run.Process.Signal(syscall.SIGTERM) }
	run.WaitDelay = 2 * time.Minute
	logf, err := os.Create(filepath.Join(last, "e2e.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	run.Stdout, run.Stderr = logf, logf
	start := time.Now()
	runErr := run.Run()
	t.Logf("suite ran %s (%v); log %s", time.Since(start).Round(time.Second), runErr, logf.Name())
	passed, failed, skipped, err := junitCounts(filepath.Join(last, "report"))
	if err != nil {
		t.Fatalf("%v; e2e.log ends:\n%s", err, tailFile(logf.Name(), 20))
	}
	t.Logf("%d passed, %d failed (%d skipped)", passed, failed, skipped)
	if passed == 0 {
		t.Errorf("no spec ran: the focus %q matches none", env("CONFORMANCE_FOCUS", `\[Conformance\]`))
	}
	if failed > 0 || runErr != nil {
		log, _ := os.ReadFile(logf.Name())
		for _, m := range regexp.MustCompile(`(?m)^• \[FAILED\].*\n.*`).FindAll(log, -1) {
			t.Errorf("%s", m)
		}
		if failed == 0 {
			t.Errorf("the suite failed: %v; e2e.log ends:\n%s", runErr, tailFile(logf.Name(), 20))
		}
	}
}

// junitCounts reads ginkgo's junit report in dir: the specs that passed, failed and were
// skipped; a suite node that failed (a BeforeSuite) counts as a failure.
func junitCounts(dir string) (passed, failed, skipped int, err error) {
	files, _ := filepath.Glob(filepath.Join(dir, "junit*.xml"))
	if len(files) == 0 {
		return 0, 0, 0, fmt.Errorf("no junit report in %s", dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return 0, 0, 0, err
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &report); err != nil {
		return 0, 0, 0, fmt.Errorf("junit report %s: %w", files[0], err)
	}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			spec := strings.HasPrefix(c.Name, "[It]")
			switch {
			case c.Failure != nil || c.Error != nil:
				failed++
			case !spec:
			case c.Skipped != nil:
				skipped++
			default:
				passed++
			}
		}
	}
	return passed, failed, skipped, nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tailLines(string(b), n)
}
