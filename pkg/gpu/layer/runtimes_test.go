package layer

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// A node with the NVIDIA runtime and no driver still labels its Node with the runtime, so the
// servers make its RuntimeClass; a label for a runtime it no longer has is removed.
func TestRuntimeOnlyNodeLabels(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nvidia-container-runtime"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1",
		Labels: map[string]string{"runtime.outpost.io/nvidia-cdi": "true", "kubernetes.io/os": "linux"}}})
	cfg := Config{NodeName: "n1", PathEnv: dir}
	plan, err := Check(cfg, gpulib.NoDriver{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, plan, gpulib.NoDriver{}, cs, slog.New(slog.DiscardHandler))
	if err != nil || a == nil {
		t.Fatalf("agent %v %v", a, err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	var l map[string]string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l = n.Labels; l["runtime.outpost.io/nvidia"] == "true" && l["runtime.outpost.io/nvidia-cdi"] == "" {
			if l["kubernetes.io/os"] != "linux" {
				t.Errorf("another label touched: %v", l)
			}
			return
		}
	}
	t.Errorf("labels %v: want runtime.outpost.io/nvidia=true and no nvidia-cdi", l)
}
