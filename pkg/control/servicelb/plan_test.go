package servicelb

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, ready bool, lbl string, addrs ...corev1.NodeAddress) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{Addresses: addrs, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
	if lbl != "" {
		n.Labels[EnableLabel] = lbl
	}
	return n
}

func internal(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}
func external(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
}

func lbService(name string, age time.Duration, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
	}
	return s
}

func ips(in []corev1.LoadBalancerIngress) string {
	var s []string
	for _, i := range in {
		s = append(s, i.IP)
	}
	return strings.Join(s, ",")
}

func TestAddressesFollowReadinessAndLabels(t *testing.T) {
	a := node("a", true, "", internal("10.0.0.2"))
	b := node("b", true, "", internal("10.0.0.3"), external("203.0.113.3"))
	c := node("c", false, "", internal("10.0.0.4"))
	if got := Addresses([]*corev1.Node{a, b, c}); len(got) != 2 || got[0].String() != "10.0.0.2" || got[1].String() != "203.0.113.3" {
		t.Errorf("all nodes: %v; want a's internal and b's external address, not the NotReady c", got)
	}
	b.Labels[EnableLabel] = "true"
	if got := Addresses([]*corev1.Node{a, b, c}); len(got) != 1 || got[0].String() != "203.0.113.3" {
		t.Errorf("with b labelled true: %v", got)
	}
	delete(b.Labels, EnableLabel)
	a.Labels[EnableLabel] = "false"
	if got := Addresses([]*corev1.Node{a, b, c}); len(got) != 1 || got[0].String() != "203.0.113.3" {
		t.Errorf("with a labelled false: %v", got)
	}
}

func TestSecondServiceOnAPortStaysPendingUntilTheFirstGoes(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, "", internal("10.0.0.2")), node("b", true, "", internal("10.0.0.3"))}
	first, second, other := lbService("first", 2*time.Hour, 80), lbService("second", time.Hour, 80, 443), lbService("other", 0, 8080)
	d := Plan([]*corev1.Service{second, other, first}, nodes, nil)
	got := map[string]Decision{}
	for _, x := range d {
		got[x.Service.Name] = x
	}
	if ips(got["first"].Ingress) != "10.0.0.2,10.0.0.3" || ips(got["other"].Ingress) != "10.0.0.2,10.0.0.3" {
		t.Errorf("first %q other %q: want both nodes", ips(got["first"].Ingress), ips(got["other"].Ingress))
	}
	if s := got["second"]; s.Ingress != nil || s.Holder != "Service default/first" || s.Port.String() != "80/TCP" {
		t.Errorf("second: %+v", s)
	}
	// The holder keeps its port across replans even when an older Service appears later.
	first.Status.LoadBalancer.Ingress = got["first"].Ingress
	older := lbService("older", 5*time.Hour, 80)
	for _, x := range Plan([]*corev1.Service{older, first}, nodes, nil) {
		if x.Service.Name == "older" && x.Holder != "Service default/first" {
			t.Errorf("older took the port from the holder: %+v", x)
		}
	}
	if d := Plan([]*corev1.Service{second}, nodes, nil); d[0].Ingress == nil {
		t.Errorf("second still pending once first is gone: %+v", d[0])
	}
}

func TestReservedNodePortAndClassHonoured(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, "", internal("10.0.0.2"))}
	api := lbService("api", time.Hour, 6443)
	np := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "np"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	onNP := lbService("on-nodeport", time.Hour, 30080)
	own := lbService("own", time.Hour, 31000)
	own.Spec.Ports[0].NodePort = 31000
	class := "example.com/other"
	foreign := lbService("foreign", time.Hour, 9000)
	foreign.Spec.LoadBalancerClass = &class
	d := Plan([]*corev1.Service{api, np, onNP, own, foreign}, nodes, Reserved(6443, false, nil))
	got := map[string]Decision{}
	for _, x := range d {
		got[x.Service.Name] = x
	}
	if got["api"].Holder != "the Kubernetes API server" {
		t.Errorf("6443: %+v", got["api"])
	}
	if got["on-nodeport"].Holder != "the NodePort of Service x/np" {
		t.Errorf("30080: %+v", got["on-nodeport"])
	}
	if got["own"].Ingress == nil {
		t.Errorf("a Service's own NodePort held it back: %+v", got["own"])
	}
	if _, ok := got["foreign"]; ok || len(d) != 3 {
		t.Errorf("a Service of another loadBalancerClass was planned: %d decisions", len(d))
	}
}

func TestIngressFollowsServiceFamilies(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, "", internal("10.0.0.2"), internal("fd00::2"))}
	s := lbService("v6", 0, 80)
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	if d := Plan([]*corev1.Service{s}, nodes, nil); ips(d[0].Ingress) != "fd00::2" {
		t.Errorf("v6-only Service got %q", ips(d[0].Ingress))
	}
	s.Spec.IPFamilies = nil
	if d := Plan([]*corev1.Service{s}, nodes, nil); ips(d[0].Ingress) != "10.0.0.2" {
		t.Errorf("Service without families got %q", ips(d[0].Ingress))
	}
}

// An older Service edited onto a port a newer one holds does not take it.
func TestEditedServiceDoesNotTakeAHeldPort(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, "", internal("10.0.0.2"))}
	older, newer := lbService("older", 2*time.Hour, 8080), lbService("newer", time.Hour, 80)
	for _, d := range Plan([]*corev1.Service{older, newer}, nodes, nil) {
		d.Service.Status.LoadBalancer.Ingress = d.Ingress
	}
	if ips(newer.Status.LoadBalancer.Ingress) == "" || ips(older.Status.LoadBalancer.Ingress) == "" {
		t.Fatal("both should be admitted on their own ports")
	}
	older.Spec.Ports[0].Port = 80
	for _, d := range Plan([]*corev1.Service{older, newer}, nodes, nil) {
		switch d.Service.Name {
		case "newer":
			if d.Ingress == nil {
				t.Errorf("the holder lost port 80 to an edited older Service: %+v", d)
			}
		case "older":
			if d.Ingress != nil || d.Holder != "Service default/newer" {
				t.Errorf("older: %+v", d)
			}
		}
	}
}

// With no node serving (all NotReady) a Service keeps its addresses instead of losing its
// forwarding, and its port.
func TestNoServingNodeKeepsIngress(t *testing.T) {
	a := node("a", true, "", internal("10.0.0.2"))
	s := lbService("web", time.Hour, 80)
	d := Plan([]*corev1.Service{s}, []*corev1.Node{a}, nil)
	s.Status.LoadBalancer.Ingress = d[0].Ingress
	a.Status.Conditions[0].Status = corev1.ConditionFalse
	if d := Plan([]*corev1.Service{s}, []*corev1.Node{a}, nil); ips(d[0].Ingress) != "10.0.0.2" {
		t.Errorf("ingress with every node NotReady: %q", ips(d[0].Ingress))
	}
	if fresh := Plan([]*corev1.Service{lbService("new", 0, 81)}, []*corev1.Node{a}, nil); fresh[0].Ingress != nil {
		t.Errorf("a new Service got addresses with no node serving: %+v", fresh[0])
	}
}
