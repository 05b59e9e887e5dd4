package runtimeclass

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func wait(t *testing.T, what string, ok func() error) {
	t.Helper()
	var err error
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = ok(); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within 10s: %v", what, err)
		}
	}
}

// classes lists the RuntimeClasses as name -> node selector.
func classes(ctx context.Context, t *testing.T, cs *fake.Clientset) map[string]map[string]string {
	t.Helper()
	l, err := cs.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, rc := range l.Items {
		var sel map[string]string
		if rc.Scheduling != nil {
			sel = rc.Scheduling.NodeSelector
		}
		out[rc.Name] = sel
	}
	return out
}

func TestRuntimeClassesFollowNodeLabels(t *testing.T) {
	ctx := context.Background()
	// A CPU server and a GPU agent with two runtimes: the agent's labels alone make the classes.
	cs := fake.NewClientset(node("server", map[string]string{"kubernetes.io/os": "linux"}),
		node("gpu1", map[string]string{"runtime.outpost.io/nvidia": "true", "runtime.outpost.io/nvidia-cdi": "true"}))
	c := &Controller{Client: cs, Log: slog.New(slog.DiscardHandler)}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	want := map[string]map[string]string{
		"nvidia":     {"runtime.outpost.io/nvidia": "true"},
		"nvidia-cdi": {"runtime.outpost.io/nvidia-cdi": "true"},
	}
	wait(t, "nvidia and nvidia-cdi with node selectors", func() error {
		if got := classes(ctx, t, cs); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("classes %v", got)
		}
		return nil
	})
	rc, err := cs.NodeV1().RuntimeClasses().Get(ctx, "nvidia", metav1.GetOptions{})
	if err != nil || rc.Handler != "nvidia" || rc.Labels["app.kubernetes.io/managed-by"] != "outpost" {
		t.Fatalf("nvidia: %+v %v", rc, err)
	}

	// A second GPU node labelled later brings the experimental runtime's class.
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("gpu2", map[string]string{"runtime.outpost.io/nvidia-experimental": "true"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want["nvidia-experimental"] = map[string]string{"runtime.outpost.io/nvidia-experimental": "true"}
	wait(t, "nvidia-experimental once gpu2 has the label", func() error {
		if got := classes(ctx, t, cs); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("classes %v", got)
		}
		return nil
	})

	// Deleted by hand while a node has the runtime: made again.
	if err := cs.NodeV1().RuntimeClasses().Delete(ctx, "nvidia-cdi", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, "nvidia-cdi made again", func() error {
		if got := classes(ctx, t, cs); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("classes %v", got)
		}
		return nil
	})

	// The last node with a runtime gone: its class stays (pods naming it wait for such a node).
	if err := cs.CoreV1().Nodes().Delete(ctx, "gpu2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := classes(ctx, t, cs); !reflect.DeepEqual(got, want) {
		t.Errorf("after gpu2 left: %v", got)
	}
}

func TestNoRuntimeNoClasses(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(node("server", nil), node("a1", map[string]string{"runtime.outpost.io/nvidia": "false", "nvidia.com/gpu.present": "true"}))
	c := &Controller{Client: cs, Log: slog.New(slog.DiscardHandler)}
	c.Start(ctx)
	defer c.Stop(ctx)
	time.Sleep(300 * time.Millisecond)
	if got := classes(ctx, t, cs); len(got) != 0 {
		t.Errorf("classes without any runtime label: %v", got)
	}
}

func TestUsersClassKeptOutpostsOldOneCorrected(t *testing.T) {
	ctx := context.Background()
	users := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia"}, Handler: "nvidia"}
	// As the manifest of earlier versions wrote it: managed by Outpost, no node selector.
	old := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia-cdi", Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost"}}, Handler: "nvidia-cdi"}
	cs := fake.NewClientset(users, old, node("gpu1", map[string]string{"runtime.outpost.io/nvidia": "true", "runtime.outpost.io/nvidia-cdi": "true"}))
	c := &Controller{Client: cs, Log: slog.New(slog.DiscardHandler)}
	c.Start(ctx)
	defer c.Stop(ctx)
	wait(t, "the old class gets its node selector", func() error {
		if got := classes(ctx, t, cs)["nvidia-cdi"]; got["runtime.outpost.io/nvidia-cdi"] != "true" {
			return fmt.Errorf("nvidia-cdi selector %v", got)
		}
		return nil
	})
	if got := classes(ctx, t, cs)["nvidia"]; got != nil {
		t.Errorf("the user's nvidia class was changed: selector %v", got)
	}
}
