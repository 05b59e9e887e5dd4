package join

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func passwordRecord(node string, annotations map[string]string) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName(node), Namespace: metav1.NamespaceSystem, Annotations: annotations},
		Type: PasswordSecretType}
}

func TestLegacyServing(t *testing.T) {
	kubelet := map[string]string{ServingCAAnnotation: ServingCAKubelet}
	records := []corev1.Secret{passwordRecord("new", kubelet), passwordRecord("old", nil), passwordRecord("other", map[string]string{ServingCAAnnotation: "server"}),
		passwordRecord("gone", kubelet)}
	fake := passwordRecord("forged", kubelet)
	fake.Type = corev1.SecretTypeOpaque // not a password record, whatever it says
	records = append(records, fake)
	for _, c := range []struct {
		nodes, want []string
	}{
		{nil, nil},
		{[]string{"new"}, nil},
		{[]string{"new", "old"}, []string{"old"}},
		{[]string{"other", "new"}, []string{"other"}},
		{[]string{"handmade"}, []string{"handmade"}}, // a Node without a join
		{[]string{"forged"}, []string{"forged"}},
	} {
		got := LegacyServing(c.nodes, records)
		if !slices.Equal(got, c.want) {
			t.Errorf("nodes %v: legacy %v, want %v", c.nodes, got, c.want)
		}
	}
}

// A join, and each renewal, records on the node's password record that its serving
// certificate is from the kubelet CA.
func TestJoinAndRenewRecordKubeletServing(t *testing.T) {
	cl := startServer(t)
	ctx := context.Background()
	secrets := cl.client.CoreV1().Secrets(metav1.NamespaceSystem)
	servingCA := func() string {
		t.Helper()
		sec, err := secrets.Get(ctx, SecretName("n1"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Annotations[ServingCAAnnotation]
	}
	dir := filepath.Join(t.TempDir(), "tls")
	c := Client{Servers: []string{cl.url}, Token: cl.cluster}
	if _, err := c.Run(ctx, node("n1", pwA), dir); err != nil {
		t.Fatal(err)
	}
	if got := servingCA(); got != ServingCAKubelet {
		t.Errorf("after the join: %q", got)
	}
	// A record from before the marker: the node's next renewal sets it.
	sec, _ := secrets.Get(ctx, SecretName("n1"), metav1.GetOptions{})
	sec.Annotations = nil
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := Stored(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Renew(ctx, st, dir, node("n1", pwA)); err != nil {
		t.Fatal(err)
	}
	if got := servingCA(); got != ServingCAKubelet {
		t.Errorf("after the renewal: %q", got)
	}
	if h, _ := secrets.Get(ctx, SecretName("n1"), metav1.GetOptions{}); string(h.Data["hash"]) != string(hash(pwA)) {
		t.Error("the marker changed the password record")
	}
}
