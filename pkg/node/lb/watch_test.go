package lb

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func slice(name string, port int32, ready map[string]bool) *discoveryv1.EndpointSlice {
	https := "https"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &https, Port: &port}},
	}
	for ip, r := range ready {
		r := r
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &r}})
	}
	return es
}

func TestServersFromTheKubernetesEndpoints(t *testing.T) {
	got := Servers([]*discoveryv1.EndpointSlice{slice("kubernetes", 6443, map[string]bool{"10.0.0.12": true, "10.0.0.11": true, "10.0.0.13": false})},
		[]string{"10.0.0.11:6443", "lb.example:6443"})
	want := []string{"10.0.0.11:6443", "10.0.0.12:6443", "lb.example:6443"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v (ready endpoints sorted, then the given ones not among them)", got, want)
	}
}

func TestWatchFollowsTheEndpointSlice(t *testing.T) {
	// The slice exists before the watch starts: the informer's list finds it (the fake
	// clientset's watch would miss objects made between its list and its watch).
	client := fake.NewClientset(slice("kubernetes", 6443, map[string]bool{"10.0.0.11": true, "10.0.0.12": true}))
	b := &LB{Servers: []string{"10.0.0.11:6443"}, Log: slog.New(slog.DiscardHandler)}
	w := &Watch{Client: client, LB: b, Log: b.Log}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(ctx)
	wait := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(b.List(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("servers %v, want %v", b.List(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait([]string{"10.0.0.11:6443", "10.0.0.12:6443"})
	// A server goes: it leaves the list, the given one stays as a fallback.
	es := slice("kubernetes", 6443, map[string]bool{"10.0.0.12": true})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait([]string{"10.0.0.12:6443", "10.0.0.11:6443"})
}
