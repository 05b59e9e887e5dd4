package join

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServingCAAnnotation, on a node's password record, names the CA that signed the serving
// certificate the node was last given: ServingCAKubelet, or nothing for a node that has not
// joined or renewed since the kubelet CA existed.
const (
	ServingCAAnnotation = "outpost.io/serving-ca"
	ServingCAKubelet    = "kubelet"
)

// MarkKubeletServing records on node's password record that its serving certificate now comes
// from the kubelet CA.
func (p Passwords) MarkKubeletServing(ctx context.Context, node string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{ServingCAAnnotation: ServingCAKubelet}}})
	if err != nil {
		return err
	}
	// A patch that changes nothing (a renewal) is not written to the datastore.
	if _, err := p.Client.CoreV1().Secrets(metav1.NamespaceSystem).Patch(ctx, SecretName(node), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("record node %s's serving CA: %w", node, err)
	}
	return nil
}

// LegacyServing names the nodes whose password record does not say that their serving
// certificate is from the kubelet CA: ones that joined before it existed and have not renewed
// since (a node renews at every start), and Nodes made without a join. While there is one,
// kubelets may still present certificates from the server CA.
func LegacyServing(nodes []string, records []corev1.Secret) []string {
	kubelet := map[string]bool{}
	for _, r := range records {
		if r.Type == PasswordSecretType && r.Annotations[ServingCAAnnotation] == ServingCAKubelet {
			kubelet[r.Name] = true
		}
	}
	var out []string
	for _, n := range nodes {
		if !kubelet[SecretName(n)] {
			out = append(out, n)
		}
	}
	return out
}
