package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/hostport"
	"github.com/outpostk8s/outpost/pkg/kubeclient/kubeclienttest"
)

func TestControllerWritesStatusAndWarns(t *testing.T) {
	ctx := context.Background()
	cs := kubeclienttest.AllowAll(fake.NewClientset(node("a", true, "", internal("10.0.0.2")), lbService("first", time.Hour, 80), lbService("second", 0, 80)))
	c := &Controller{Client: cs, Reserved: Reserved(6443, false, nil), Log: slog.New(slog.DiscardHandler)}
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

// Ports Outpost or the host serve on the nodes' addresses are never handed out: the Service
// stays pending with a PortReserved Warning naming the port and what uses it. etcd's ports
// are Outpost's only while embedded etcd runs.
func TestReservedPortsStayPendingWithEvent(t *testing.T) {
	admin := []hostport.Port{{Number: 8080, Protocol: "TCP"}, {Number: 9000, Protocol: "UDP"}}
	pending := map[string]string{ // Service -> what its Event must say
		"etcd":      "2379/TCP on the nodes' addresses is reserved for embedded etcd's clients",
		"etcd-peer": "2380/TCP on the nodes' addresses is reserved for embedded etcd's peers",
		"ssh":       "22/TCP on the nodes' addresses is reserved for SSH",
		"gpu":       "9401/TCP on the nodes' addresses is reserved for the GPU metrics endpoint",
		"admin":     "8080/TCP on the nodes' addresses is reserved for the admin (--servicelb-reserved-ports)",
		"admin-udp": "9000/UDP on the nodes' addresses is reserved for the admin (--servicelb-reserved-ports)",
	}
	for _, etcd := range []bool{true, false} {
		t.Run(fmt.Sprintf("etcd=%v", etcd), func(t *testing.T) {
			ctx := context.Background()
			udp := lbService("admin-udp", time.Hour, 9000)
			udp.Spec.Ports[0].Protocol = corev1.ProtocolUDP
			cs := kubeclienttest.AllowAll(fake.NewClientset(node("a", true, "", internal("10.0.0.2")), udp,
				lbService("etcd", time.Hour, 2379), lbService("etcd-peer", time.Hour, 2380), lbService("ssh", time.Hour, 22),
				lbService("gpu", time.Hour, 9401), lbService("admin", time.Hour, 8080),
				lbService("tcp-9000", time.Hour, 9000), lbService("web", time.Hour, 80)))
			c := &Controller{Client: cs, Reserved: Reserved(6443, etcd, admin), Log: slog.New(slog.DiscardHandler)}
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Stop(ctx)
			status := func(name string) string {
				s, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return ips(s.Status.LoadBalancer.Ingress)
			}
			granted := []string{"web", "tcp-9000"} // the admin reserved 9000 for UDP only
			if !etcd {
				granted = append(granted, "etcd", "etcd-peer")
			}
			for _, name := range granted {
				waitFor(t, name+" admitted", func() bool { return status(name) == "10.0.0.2" })
			}
			for name, msg := range pending {
				if !etcd && strings.HasPrefix(name, "etcd") {
					continue
				}
				waitFor(t, "PortReserved event for "+name, func() bool {
					ev, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
					for _, e := range ev.Items {
						if e.InvolvedObject.Name == name && e.Reason == "PortReserved" && e.Type == corev1.EventTypeWarning &&
							strings.Contains(e.Message, msg) {
							return true
						}
					}
					return false
				})
				if s := status(name); s != "" {
					t.Errorf("%s admitted on a reserved port: %q", name, s)
				}
			}
		})
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}
