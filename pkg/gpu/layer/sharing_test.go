package layer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	"github.com/outpostk8s/outpost/pkg/spec/sharing"
)

func devices(a *Layer) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]int{}
	for _, r := range a.Res {
		m[r.Name] = len(r.Devices)
	}
	return m
}

// The node's label switches the sharing config: the plugins are replaced and registered
// again, a name without a config is refused with an Event and changes nothing.
func TestSharingConfigByLabel(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ts4.yaml"), []byte("version: v1\nsharing: {timeSlicing: {renameByDefault: true, resources: [{name: nvidia.com/gpu, replicas: 4}]}}\n"), 0o644)
	set, err := sharing.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	kubelet := gputest.StartKubelet(t, plugins)
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	// The fake tracker does not generate names, as the apiserver does for Events.
	n := 0
	cs.PrependReactor("create", "events", func(act k8stesting.Action) (bool, runtime.Object, error) {
		e := act.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		n++
		e.Name = fmt.Sprintf("%s%d", e.GenerateName, n)
		return false, nil, nil
	})
	node, err := mockgpu.DGXA100().Detect()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeName: "n1", Strategy: resources.None, Replicas: 1, PluginDir: plugins, Sharing: set}
	res, err := resources.Build(node, resources.Config{Strategy: resources.None, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := &Layer{cfg: cfg, log: slog.New(slog.DiscardHandler), client: cs, Node: node, Res: res}
	ctx := context.Background()
	a.mu.Lock()
	if err := a.startPlugins(ctx, a.Res); err != nil {
		t.Fatal(err)
	}
	a.mu.Unlock()
	defer func() { a.mu.Lock(); a.stopPlugins(); a.mu.Unlock() }()
	if got := devices(a); got["nvidia.com/gpu"] != 8 || kubelet.Count() != 1 {
		t.Fatalf("before: %v, %d registrations", got, kubelet.Count())
	}
	st := &status{client: cs, node: "n1", log: a.log}

	a.applySharing(ctx, st, "ts4")
	if got := devices(a); len(got) != 1 || got["nvidia.com/gpu.shared"] != 32 {
		t.Errorf("ts4: %v, want 32 nvidia.com/gpu.shared", got)
	}
	if r := kubelet.Requests(); len(r) != 2 || r[1].ResourceName != "nvidia.com/gpu.shared" {
		t.Errorf("registrations %v", r)
	}
	if l := a.labels(); l["nvidia.com/gpu.replicas"] != "4" || l["nvidia.com/gpu.sharing-strategy"] != "time-slicing" {
		t.Errorf("labels %v", l)
	}

	a.applySharing(ctx, st, "ts9")
	a.applySharing(ctx, st, "ts9") // reported once
	if got := devices(a); got["nvidia.com/gpu.shared"] != 32 {
		t.Errorf("after a refused name: %v, want ts4 kept", got)
	}
	ev, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	var failed []string
	for _, e := range ev.Items {
		if e.Reason == "SharingConfigFailed" {
			failed = append(failed, e.Message)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "nvidia.com/device-plugin.config=ts9: no such config") {
		t.Errorf("SharingConfigFailed events %q", failed)
	}

	a.applySharing(ctx, st, "")
	if got := devices(a); got["nvidia.com/gpu"] != 8 || len(got) != 1 {
		t.Errorf("label removed: %v, want 8 whole GPUs", got)
	}
}
