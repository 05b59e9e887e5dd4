package nodepassword

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/kubeclient/kubeclienttest"
)

func secret(node string, created time.Time) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: join.SecretName(node), Namespace: metav1.NamespaceSystem,
		CreationTimestamp: metav1.NewTime(created)}, Type: join.PasswordSecretType}
}

func serverSecret(node string, created time.Time) *corev1.Secret {
	s := secret(node, created)
	s.Labels = map[string]string{join.ServerLabel: "true"}
	return s
}

func exists(t *testing.T, c *fake.Clientset, node string) bool {
	_, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Get(context.Background(), join.SecretName(node), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestNodeDeletionFreesName(t *testing.T) {
	now := time.Now()
	node := func(name string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-30 * time.Minute))}}
	}
	c := kubeclienttest.AllowAll(fake.NewClientset(
		node("a1"), secret("a1", now.Add(-time.Hour)),
		node("a2"), secret("a2", now.Add(-time.Hour)),
		node("s1"), secret("s1", now.Add(-time.Hour)), // the server's own
		node("re"), secret("re", now.Add(-time.Minute)), // a new machine joined under a freed name
		secret("gone", now.Add(-time.Hour)),     // its Node went while no server ran
		secret("fresh", now),                    // joined a moment ago, Node not registered yet
		serverSecret("s2", now.Add(-time.Hour)), // another server, --disable-agent: no Node ever
	))
	// The fake clientset's watches miss what happens before they start: delete only once the
	// controller watches Nodes.
	watching := make(chan struct{}, 8)
	c.PrependWatchReactor("nodes", func(k8stesting.Action) (bool, watch.Interface, error) {
		select {
		case watching <- struct{}{}:
		default:
		}
		return false, nil, nil
	})
	cl := &NodePassword{Client: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Resync: time.Hour, Keep: "s1"}
	ctx := context.Background()
	if err := cl.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Stop(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for exists(t, c, "gone") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(t, c, "gone") || !exists(t, c, "fresh") || !exists(t, c, "a1") {
		t.Fatal("sweep: want gone removed, fresh and a1 kept")
	}
	if !exists(t, c, "s2") {
		t.Fatal("sweep removed the record of a server without a Node: a join could take its name")
	}
	select {
	case <-watching:
		time.Sleep(100 * time.Millisecond) // the default reactor registers the watch after ours
	case <-time.After(10 * time.Second):
		t.Fatal("the controller never watched Nodes")
	}
	deadline = time.Now().Add(10 * time.Second)
	for _, n := range []string{"a1", "s1", "re"} {
		if err := c.CoreV1().Nodes().Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for exists(t, c, "a1") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the other deletions' events
	if exists(t, c, "a1") || !exists(t, c, "a2") {
		t.Error("deleting node a1: want its password gone and a2's kept")
	}
	if !exists(t, c, "s1") || !exists(t, c, "re") {
		t.Error("the server's own record, or one newer than the deleted Node, was removed")
	}
}
