package join

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ErrNodeTaken means another machine holds the node name.
var ErrNodeTaken = errors.New("node name taken")

// Passwords keeps one hash per node name in a kube-system Secret: the first machine to join
// under a name sets it; later joins under that name must present the same password.
type Passwords struct {
	Client kubernetes.Interface
}

// SecretName is where the hash for node lives.
func SecretName(node string) string { return node + ".node-password.outpost" }

func hash(pw string) []byte {
	sum := sha256.Sum256([]byte(pw))
	return []byte(hex.EncodeToString(sum[:]))
}

// Verify accepts the password for node, recording it on first use.
func (p Passwords) Verify(ctx context.Context, node, password string) error {
	secrets := p.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	sec, err := secrets.Get(ctx, SecretName(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName(node), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost"}},
			Type: "outpost.io/node-password", Data: map[string][]byte{"hash": hash(password)}}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); err == nil {
			return nil
		} else if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("store node password: %w", err)
		}
		if sec, err = secrets.Get(ctx, SecretName(node), metav1.GetOptions{}); err != nil {
			return fmt.Errorf("node password: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("node password: %w", err)
	}
	if subtle.ConstantTimeCompare(sec.Data["hash"], hash(password)) != 1 {
		return fmt.Errorf("%w: node %q already belongs to another machine: give this one another name (--node-name), or, if that machine is gone for good, `kubectl -n kube-system delete secret %s`", ErrNodeTaken, node, SecretName(node))
	}
	return nil
}
