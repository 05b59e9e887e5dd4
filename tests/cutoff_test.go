package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// cutOff is how long the agent is cut off: as long as a site's uplink can be gone, and twice
// the default eviction delay (300 s), so a pod that did not tolerate it would have been evicted.
const cutOff = 10 * time.Minute

// TestAgentCutOff: an agent cut off from every server for 10 minutes (its link down).
//   - Its pods keep running and serving the whole time, checked through the node's own
//     containerd (nothing reaches the apiserver).
//   - Its node goes NotReady (Unknown) after the default grace period.
//   - The pods stay bound (a DaemonSet's pod, and a pod tolerating `unreachable` with no
//     limit, as a site's per-node workloads are), while a pod tolerating it for 60 s is evicted:
//     the taints are there, and only the tolerations keep the others.
//   - When the link returns, the node is Ready again with the same pods and containers, none
//     restarted, and the agent process never restarted.
func TestAgentCutOff(t *testing.T) {
	c := checkedCluster(t)
	img, imgName := harness.TestImage(t)
	srv, token := startServer(t, c, img)
	a := startAgent(t, c, img, "a1", token, srv.URL())
	waitReady(t, srv, "a1", 3*time.Minute)
	apply(t, srv, fmt.Sprintf(cutOffYAML, imgName, imgName, imgName))
	if out, err := srv.Kubectl("wait", "--for=condition=Ready", "pod", "-l", "app in (edge,evict)", "--timeout=2m"); err != nil {
		t.Fatal(out, err)
	}
	before := edgePods(t, srv)
	if len(before) != 2 {
		t.Fatalf("want 2 edge pods on a1, got %v", before)
	}
	dsIP := strings.TrimSpace(srv.MustKubectl("get", "pod", "-l", "app=edge,kind=ds", "-o", "jsonpath={.items[0].status.podIP}"))
	starts := strings.Count(a.Log(), "starting outpost agent")

	a.LinkDown() // a test that fails before LinkUp leaves it to the cluster's cleanup
	down := time.Now()
	waitCondition(t, srv, "a1", "Unknown", 2*time.Minute)
	t.Logf("a1 NotReady %.1fs after its link went down", time.Since(down).Seconds())

	// Until the link returns: every 30 s the tolerant pod reaches the DaemonSet's pod over the
	// node's own bridge, and the agent is still the process that started.
	checks := 0
	for time.Since(down) < cutOff {
		if out, err := podExec(a, "tolerant", "/optest", "get", "http://"+dsIP+":8080/"); err != nil || !strings.Contains(out, "hello from") {
			t.Errorf("%.0fs cut off: tolerant -> DaemonSet pod: %q %v", time.Since(down).Seconds(), out, err)
		} else {
			checks++
		}
		if a.Exited() {
			t.Fatalf("the agent exited while cut off: %v\n%s", a.ExitErr(), tailLines(a.Log(), 30))
		}
		time.Sleep(30 * time.Second)
	}
	// The eviction delay has long passed: the pods are still bound to a1, and the pod that
	// tolerated it for 60 s is being evicted (it ends once a1 hears of it).
	if during := edgePods(t, srv); !sameKeys(during, before) {
		t.Errorf("pods while a1 was cut off: %v, before: %v", during, before)
	}
	if out, err := srv.Kubectl("get", "pod", "evictable", "-o", "jsonpath={.metadata.deletionTimestamp}"); err == nil && out == "" {
		t.Errorf("the pod that tolerated an unreachable node for 60 s was not evicted in %s", cutOff)
	}
	t.Logf("a1's pods served %d checks in %s cut off", checks, cutOff)

	a.LinkUp()
	up := time.Now()
	waitCondition(t, srv, "a1", "True", 3*time.Minute)
	t.Logf("a1 Ready %.1fs after its link came back", time.Since(up).Seconds())
	harness.Eventually(t, 2*time.Minute, "edge pods Ready again", func() error {
		out, err := srv.Kubectl("get", "pods", "-l", "app=edge", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || strings.Count(out, "=True") != 2 {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	if after := edgePods(t, srv); !sameKeys(after, before) {
		t.Errorf("pods after the link came back: %v, before: %v", after, before)
	} else {
		for k, v := range before {
			if after[k] != v {
				t.Errorf("pod %s: %s before, %s after", k, v, after[k])
			}
		}
	}
	harness.Eventually(t, 2*time.Minute, "the evicted pod gone", func() error {
		if out, err := srv.Kubectl("get", "pod", "evictable", "-o", "name"); err == nil {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
	if out, err := srv.Kubectl("exec", "tolerant", "--", "/optest", "get", "http://"+dsIP+":8080/"); err != nil || !strings.Contains(out, "hello from") {
		t.Errorf("tolerant -> DaemonSet pod through the apiserver after: %q %v", out, err)
	}
	if n := strings.Count(a.Log(), "starting outpost agent"); n != starts || a.Exited() {
		t.Errorf("the agent restarted (%d starts, was %d) or exited", n, starts)
	}
}

// edgePods maps each edge pod (name and UID) to its node, container ID and restart count:
// a pod recreated, moved or restarted shows as a change.
func edgePods(t *testing.T, srv *harness.Node) map[string]string {
	t.Helper()
	out := srv.MustKubectl("get", "pods", "-l", "app=edge", "-o",
		`jsonpath={range .items[*]}{.metadata.name}/{.metadata.uid} {.spec.nodeName}/{.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount}{"\n"}{end}`)
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			m[k] = v
		}
	}
	return m
}

func sameKeys(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// A DaemonSet's pods tolerate an unreachable node with no limit by default; the bare pod says
// so itself; the evictable one tolerates it for 60 s. All on a1.
const cutOffYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: edge}
spec:
  selector: {matchLabels: {app: edge, kind: ds}}
  template:
    metadata: {labels: {app: edge, kind: ds}}
    spec:
      nodeSelector: {kubernetes.io/hostname: a1}
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        args: ["serve"]
---
apiVersion: v1
kind: Pod
metadata: {name: tolerant, labels: {app: edge, kind: pod}}
spec:
  nodeName: a1
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    args: ["serve"]
---
apiVersion: v1
kind: Pod
metadata: {name: evictable, labels: {app: evict}}
spec:
  nodeName: a1
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    args: ["serve"]
`
