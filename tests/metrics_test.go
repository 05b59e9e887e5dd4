package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// metricsChecks: `kubectl top` answers, and an HPA on CPU scales a Deployment up under load
// from another pod and back down once the load stops.
func metricsChecks(t *testing.T, s *harness.Server, image string) {
	t.Run("KubectlTop", func(t *testing.T) {
		start := time.Now()
		harness.Eventually(t, 90*time.Second, "kubectl top node", func() error {
			out, err := s.Kubectl("top", "node", "--no-headers")
			if err != nil || len(strings.Fields(out)) < 5 {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
		harness.Eventually(t, 60*time.Second, "kubectl top pod", func() error {
			out, err := s.Kubectl("top", "pod", "-n", "kube-system", "--no-headers")
			if err != nil || !strings.Contains(out, "coredns") {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
		t.Logf("kubectl top answered %.1fs into the test", time.Since(start).Seconds())
	})
	t.Run("HPAScalesUpAndDown", func(t *testing.T) {
		y := fmt.Sprintf(hpaYAML, image)
		f := filepath.Join(t.TempDir(), "hpa.yaml")
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		s.MustKubectl("apply", "-f", f)
		defer s.Kubectl("delete", "-f", f, "--wait=false")
		s.MustKubectl("wait", "--for=condition=Available", "deploy/busy", "--timeout=120s")
		replicas := func() int {
			out, _ := s.Kubectl("get", "deploy", "busy", "-o", "jsonpath={.status.replicas}")
			n, _ := strconv.Atoi(strings.TrimSpace(out))
			return n
		}
		s.MustKubectl("run", "loader", "--image", image, "--image-pull-policy", "Never", "--restart", "Never",
			"--", "load", "http://busy.default.svc.cluster.local/")
		start := time.Now()
		harness.Eventually(t, 3*time.Minute, "busy scaled to 2 or more", func() error {
			if n := replicas(); n < 2 {
				hpa, _ := s.Kubectl("get", "hpa", "busy", "--no-headers")
				return fmt.Errorf("%d replicas; hpa: %s", n, hpa)
			}
			return nil
		})
		t.Logf("scaled up %.1fs after the load started", time.Since(start).Seconds())
		s.MustKubectl("delete", "pod", "loader", "--grace-period=1")
		start = time.Now()
		harness.Eventually(t, 3*time.Minute, "busy back to 1", func() error {
			if n := replicas(); n != 1 {
				hpa, _ := s.Kubectl("get", "hpa", "busy", "--no-headers")
				return fmt.Errorf("%d replicas; hpa: %s", n, hpa)
			}
			return nil
		})
		t.Logf("scaled down %.1fs after the load stopped", time.Since(start).Seconds())
	})
}

const hpaYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: busy}
spec:
  replicas: 1
  selector: {matchLabels: {app: busy}}
  template:
    metadata: {labels: {app: busy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        args: [serve]
        resources: {requests: {cpu: 10m}}
---
apiVersion: v1
kind: Service
metadata: {name: busy}
spec:
  selector: {app: busy}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: busy}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: busy}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 0}
    scaleUp: {stabilizationWindowSeconds: 0}
`
