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
