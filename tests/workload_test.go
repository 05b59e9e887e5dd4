package tests

// Helpers of the single-server tests: the workload they apply, pods and containers to act on,
// and small host lookups.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpostk8s/outpost/tests/harness"
)

func applyWorkload(t *testing.T, s *harness.Server, image string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %[1]s
        imagePullPolicy: Never
        args: [serve]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: %[1]s
    imagePullPolicy: Never
    args: [sleep]
`, image)
	f := filepath.Join(s.Root, "workload.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	s.MustKubectl("apply", "-f", f)
	s.MustKubectl("wait", "--for=condition=Available", "deploy/web", "--timeout=120s")
	s.MustKubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
}

func firstPod(t *testing.T, s *harness.Server, selector string) string {
	t.Helper()
	out := s.MustKubectl("get", "pods", "-l", selector, "--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].metadata.name}")
	if out == "" {
		t.Fatal("no running pod for " + selector)
	}
	return out
}

// killContainer SIGKILLs the container's main process from the host, as an OOM kill would.
func killContainer(t *testing.T, s *harness.Server, pod string) {
	t.Helper()
	id := s.MustKubectl("get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	id = strings.TrimPrefix(id, "containerd://")
	out, err := s.Ctr("task", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			var pid int
			fmt.Sscan(f[1], &pid)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("container %s not in ctr task ls:\n%s", id, out)
}

func containerIDs(t *testing.T, s *harness.Server) string {
	t.Helper()
	return s.MustKubectl("get", "pods", "-A", "--sort-by=.metadata.name", "-o",
		"jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[*].containerID} {end}")
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// rejected sums the packet counters of the node's service-CIDR reject chain.
func rejected(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("iptables", "-t", "filter", "-L", "OUTPOST-SERVICE-CIDR", "-n", "-v", "-x").CombinedOutput()
	if err != nil {
		t.Fatalf("reject chain: %v: %s", err, out)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		var pk int
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "%d", &pk); err == nil {
			n += pk
		}
	}
	return n
}
