package servicelb

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestControllerWritesStatusAndWarns(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(node("a", true, "", internal("10.0.0.2")), lbService("first", time.Hour, 80), lbService("second", 0, 80))
	c := &Controller{Client: cs, Reserved: Reserved(6443), Log: slog.New(slog.DiscardHandler)}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within 10s", what)
			}
		}
	}
	status := func(name string) string {
		s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "gone"
		}
		return ips(s.Status.LoadBalancer.Ingress)
	}
	wait("first admitted", func() bool { return status("first") == "10.0.0.2" })
	wait("PortInUse event for second", func() bool {
		ev, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, e := range ev.Items {
			if e.InvolvedObject.Name == "second" && e.Reason == "PortInUse" && e.Type == corev1.EventTypeWarning &&
				strings.Contains(e.Message, "default/first") {
				return true
			}
		}
		return false
	})
	if s := status("second"); s != "" {
		t.Errorf("second admitted too: %q", s)
	}
	if err := cs.CoreV1().Services("default").Delete(ctx, "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("second admitted once first is gone", func() bool { return status("second") == "10.0.0.2" })
	// A new node's address joins every admitted Service.
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("b", true, "", internal("10.0.0.3")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("second on both nodes", func() bool { return status("second") == "10.0.0.2,10.0.0.3" })
}
