package logging

import (
	"strings"
	"time"
)

// expected is an upstream ERROR line that is no fault in Outpost's setting: logged at level
// instead (WARN shows, INFO only at -v 1 and up). startup limits it to the start-up window,
// when the parts are still finding each other; after it, the same line is an ERROR again.
type expected struct {
	comp, text string // the component ("": any), and text its line holds
	level      string
	startup    bool
}

// expectedLines is the table; the first line that matches decides.
func expectedLines() []expected {
	return []expected{
		// The kubelet before its Node is registered (it registers moments after it starts).
		{"kubelet", `node is not registered yet`, "INFO", true},
		{"kubelet", `Failed to get node when trying to set owner ref to the node lease`, "INFO", true},
		{"kubelet", `Error getting the current node from lister`, "INFO", true},
		{"kubelet", `failed to get node info: node`, "INFO", true},
		{"kubelet", `Error updating node status, will retry`, "INFO", true},
		// ...and before its first look at the runtime: each passes by itself within seconds.
		{"kubelet", `PLEG is not healthy: pleg has yet to be successful`, "INFO", true},
		{"kubelet", `Image garbage collection failed once. Stats initialization may not have completed yet`, "INFO", true},
		{"kubelet", `eviction manager: failed to check if we have separate container filesystem`, "INFO", true},
		// A first start has no device-manager checkpoint yet.
		{"kubelet", `Failed to read data from checkpoint err="checkpoint is not found"`, "INFO", false},
		// The host denies what the kubelet would like (a container without CAP_SYS_RESOURCE, a
		// PID namespace it cannot read): it runs on without; the operator may want to know.
		{"kubelet", `Failed to set rlimit on max file handles`, "WARN", false},
		{"kubelet", `Failed to ensure process in container with oom score`, "WARN", false},
		// Outpost leaves NodePorts on every address, as k3s does; upstream's advice stays a note.
		{"kube-proxy", `nodePortAddresses is unset`, "INFO", false},
		// Any component ("" matches each), while the parts start together: an update that met
		// another's write (a restarted apiserver's identity Lease, a controller's first status
		// update), retried by its controller; an object asked for in kube-system before the
		// namespace exists on a new cluster.
		{"", `the object has been modified; please apply your changes to the latest version and try again`, "INFO", true},
		{"", `namespaces \"kube-system\" not found`, "INFO", true},
		// A controller whose cache has not yet seen its own last write (1.37's read-your-writes
		// check): the key is synced again once it has; upstream logs each such retry as an error.
		{"kube-controller-manager", `is not as new as written version`, "INFO", false},
		// The aggregated metrics API is registered before metrics-server serves on a restart.
		{"kube-apiserver", `v1beta1.metrics.k8s.io failed with`, "INFO", true},
		{"kube-apiserver", `v1beta1.metrics.k8s.io: failed to retrieve openAPI spec`, "INFO", true},
		// ...and its Service is not yet in the aggregator's cache when the first discovery
		// requests reach the proxy on a warm restart (seen in CI's TestCleanLog).
		{"kube-apiserver", `error resolving kube-system/metrics-server: service "metrics-server" not found`, "INFO", true},
		// The control plane's metrics options with no label allow-list (none is needed): upstream
		// reads a manifest named "" instead, and an empty list given instead is an ERROR too.
		{"k8s", `The manifest file is empty, ignoring.`, "INFO", false},
		// A node's kubelet that does not answer (a node that joined a moment ago, or is down:
		// its NotReady condition says so) is worth a warning, not an error.
		{"metrics-server", `Failed to scrape node`, "INFO", true},
		{"metrics-server", `Failed to scrape node`, "WARN", false},
	}
}

// startupWindow is how long after the role's start the start-up lines are expected.
const startupWindow = time.Minute

// errorLevel is the level an upstream ERROR line of comp is logged at: a stopped component's
// and, during the stop, a call the stop cut short (a canceled context, a part already gone)
// are INFO; the expected lines have their own; the rest are ERROR.
func (f *Guard) errorLevel(comp, line string) string {
	f.mu.Lock()
	stopping, quiet, started := f.stopping, f.quiet[comp], f.started
	f.mu.Unlock()
	if quiet || stopping && (strings.Contains(line, "context canceled") || strings.Contains(line, "connection refused")) {
		return "INFO"
	}
	inStartup := started.IsZero() || time.Since(started) < startupWindow
	for _, e := range expectedLines() {
		if (e.comp == "" || e.comp == comp) && (inStartup || !e.startup) && strings.Contains(line, e.text) {
			return e.level
		}
	}
	return "ERROR"
}
