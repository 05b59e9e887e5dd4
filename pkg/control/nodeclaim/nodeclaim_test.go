package nodeclaim

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/join"
)

// The server's own node claims its name and marks its record: its serving certificate is
// from the kubelet CA.
func TestClaimMarksOwnServing(t *testing.T) {
	client := fake.NewClientset()
	c := &Claim{Passwords: join.Passwords{Client: client, Server: true}, Node: "srv",
		File: filepath.Join(t.TempDir(), "password"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sec, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(context.Background(), join.SecretName("srv"), metav1.GetOptions{})
	if err != nil || sec.Annotations[join.ServingCAAnnotation] != join.ServingCAKubelet {
		t.Errorf("record %v %v", sec, err)
	}
}
