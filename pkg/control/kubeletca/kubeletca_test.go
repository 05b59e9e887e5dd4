package kubeletca

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/pki"
)

func bundleSize(t *testing.T, b *pki.Bundle) int {
	t.Helper()
	raw, err := os.ReadFile(b.Path(pki.KubeletCABundle, ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.PEMCerts(raw)
	if err != nil || !certs[0].Equal(b.KubeletCA.Cert) {
		t.Fatalf("bundle: %v", err)
	}
	return len(certs)
}

// A cluster from before the kubelet CA: the bundle keeps the server CA while one Node's record
// does not say its serving certificate is from the kubelet CA, and drops it once all do.
func TestKubeletTrustDropsServerCAOnceAllRenewed(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.LoadOrCreateCA(dir, pki.ServerCA, "outpost-server-ca"); err != nil {
		t.Fatal(err)
	}
	spec := pki.ClusterSpec{Dir: dir, NodeName: "srv", NodeIP: net.ParseIP("127.0.0.1")}
	b, err := pki.EnsureCluster(spec)
	if err != nil {
		t.Fatal(err)
	}
	if n := bundleSize(t, b); n != 2 {
		t.Fatalf("bundle of %d certificates before any check", n)
	}
	var objs []runtime.Object
	for _, n := range []string{"srv", "old", "new"} {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: join.SecretName(n), Namespace: metav1.NamespaceSystem},
				Type: join.PasswordSecretType, Data: map[string][]byte{"hash": []byte("x")}})
	}
	client := fake.NewClientset(objs...)
	ctx := context.Background()
	pw := join.Passwords{Client: client}
	for _, n := range []string{"srv", "new"} {
		if err := pw.MarkKubeletServing(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	k := &Trust{Client: client, Dir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if k.check(ctx) || bundleSize(t, b) != 2 {
		t.Error("server CA dropped while node old has not renewed")
	}
	if err := pw.MarkKubeletServing(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if !k.check(ctx) || bundleSize(t, b) != 1 {
		t.Error("server CA kept once every node renewed")
	}
	// For good: the certificate check and the next start keep it out, and the check is over.
	if b, err = pki.EnsureCluster(spec); err != nil || bundleSize(t, b) != 1 {
		t.Errorf("server CA back after the drop: %v", err)
	}
	if err := k.Start(ctx); err != nil || k.cancel != nil {
		t.Errorf("checking again after the drop: %v", err)
	}
}
