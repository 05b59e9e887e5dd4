package etcdmember

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/control/sharedinformers"
)

// TestRemovesMemberOfDeletedNode: deleting a Node removes the member of that name; deleting
// the server's own Node does not.
func TestRemovesMemberOfDeletedNode(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "s1"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "s2"}})
	var mu sync.Mutex
	var removed []string
	r := &Remover{Client: client, Own: "s1", Log: slog.New(slog.DiscardHandler),
		Remove: func(_ context.Context, name string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			removed = append(removed, name)
			return true, nil
		}}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	time.Sleep(300 * time.Millisecond) // the informer's first list
	for _, n := range []string{"s1", "s2"} {
		if err := client.CoreV1().Nodes().Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), removed...)
		mu.Unlock()
		if len(got) == 1 && got[0] == "s2" {
			break
		}
		if time.Now().After(deadline) || len(got) > 1 {
			t.Fatalf("removed %v, want [s2]", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSharedInformers: on the process's shared factory the Remover works as alone; once
// stopped it removes nothing more, while the shared Node informer runs on for other users.
func TestSharedInformers(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "s2"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "s3"}})
	shared := sharedinformers.New("admin", client)
	defer shared.Stop(ctx)
	var mu sync.Mutex
	var removed []string
	r := &Remover{Client: client, Own: "s1", Log: slog.New(slog.DiscardHandler), Informers: shared,
		Remove: func(_ context.Context, name string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			removed = append(removed, name)
			return true, nil
		}}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := sharedinformers.For(shared, client).Factory().Core().V1().Nodes().Informer()
	for end := time.Now().Add(5 * time.Second); !nodes.HasSynced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the shared Node informer did not sync")
		}
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "s2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(removed)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("s2's member not removed")
		}
	}
	r.Stop(ctx)
	if err := client.CoreV1().Nodes().Delete(ctx, "s3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); len(nodes.GetStore().List()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the shared Node informer stopped with the Remover")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(removed) != 1 || removed[0] != "s2" {
		t.Errorf("removed %v, want [s2]: nothing after Stop", removed)
	}
}
