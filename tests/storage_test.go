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

// storageChecks: a claim without a class binds through local-path on the node of its first
// pod (nodeSelector "" lets the scheduler choose); what one pod writes the next reads;
// deleting the claim removes the volume and, when hostDir can see it, its directory.
func storageChecks(t *testing.T, kubectl func(...string) (string, error), image, node, storageDir string) {
	t.Helper()
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	dir := t.TempDir()
	apply := func(name, y string) {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		must("apply", "-f", f)
	}
	sel := ""
	if node != "" {
		sel = fmt.Sprintf("  nodeSelector: {kubernetes.io/hostname: %s}\n", node)
	}
	pod := func(name string, args ...string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
%s  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    args: [%s]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: weights}
`, name, sel, image, strings.Join(args, ", "))
	}
	apply("pvc", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: weights}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 64Mi}}\n")
	if out := must("get", "pvc", "weights", "-o", "jsonpath={.spec.storageClassName} {.status.phase}"); out != "local-path Pending" {
		t.Errorf("claim before its pod: %q, want the default class local-path and Pending (WaitForFirstConsumer)", out)
	}
	succeeded := func(name string) {
		t.Helper()
		harness.Eventually(t, 2*time.Minute, name+" succeeded", func() error {
			out, err := kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}")
			if err != nil || out != "Succeeded" {
				ev, _ := kubectl("get", "events", "--field-selector", "involvedObject.name="+name, "-o", "jsonpath={.items[*].message}")
				return fmt.Errorf("%q %v; events: %s", out, err, ev)
			}
			return nil
		})
	}
	apply("writer", pod("writer", "write", "/data/model.bin", "weights-v1"))
	succeeded("writer")
	pv := must("get", "pvc", "weights", "-o", "jsonpath={.spec.volumeName}")
	info := must("get", "pv", pv, "-o", "jsonpath={.spec.storageClassName} {.spec.persistentVolumeReclaimPolicy} {.spec.hostPath.path}{.spec.local.path} {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}")
	f := strings.Fields(info)
	ran := must("get", "pod", "writer", "-o", "jsonpath={.spec.nodeName}")
	if len(f) != 4 || f[0] != "local-path" || f[1] != "Delete" || !strings.HasPrefix(f[2], storageDir+"/") || f[3] != ran || (node != "" && ran != node) {
		t.Fatalf("volume %s: %q; pod ran on %s; want local-path, Delete, under %s, on the pod's node", pv, info, ran, storageDir)
	}
	volDir := f[2]
	if _, err := os.Stat(filepath.Join(volDir, "model.bin")); err != nil {
		t.Errorf("the file is not in %s on the node: %v", volDir, err)
	}
	must("delete", "pod", "writer")
	apply("reader", pod("reader", "read", "/data/model.bin"))
	succeeded("reader")
	if out := must("logs", "reader"); strings.TrimSpace(out) != "weights-v1" {
		t.Errorf("reader read %q", out)
	}
	must("delete", "pod", "reader")
	must("delete", "pvc", "weights")
	harness.Eventually(t, 2*time.Minute, "volume and its directory gone", func() error {
		if out, _ := kubectl("get", "pv", "-o", "name"); strings.Contains(out, pv) {
			return fmt.Errorf("%s still there", pv)
		}
		if _, err := os.Stat(volDir); !os.IsNotExist(err) {
			return fmt.Errorf("%s still there: %v", volDir, err)
		}
		return nil
	})
}
