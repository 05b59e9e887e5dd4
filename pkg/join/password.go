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

// PasswordSecretType marks the Secrets that hold node-password hashes.
const PasswordSecretType = corev1.SecretType("outpost.io/node-password")

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

// Verify accepts the password for node on a join, recording it on first use. A name that
// already has a Node but no recorded password was registered without a join (the server's own
// node before it recorded one, or a hand-made Node): a token holder must not take it over.
func (p Passwords) Verify(ctx context.Context, node, password string) error {
	return p.check(ctx, node, password, false)
}

// Claim is Verify for a machine that proved its identity otherwise (the server's own node, or
// a node renewing with its client certificate): it may record the password for a name whose
// Node exists without one.
func (p Passwords) Claim(ctx context.Context, node, password string) error {
	return p.check(ctx, node, password, true)
}

func (p Passwords) check(ctx context.Context, node, password string, proven bool) error {
	secrets := p.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	sec, err := secrets.Get(ctx, SecretName(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if !proven {
			if _, err := p.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("%w: node %q is registered but has no node password on record, so no join may take it: give this machine another name (--node-name), or, if node %s is gone for good, `kubectl delete node %s`", ErrNodeTaken, node, node, node)
			} else if !apierrors.IsNotFound(err) {
				return fmt.Errorf("node password: look up node: %w", err)
			}
		}
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName(node), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost"}},
			Type: PasswordSecretType, Data: map[string][]byte{"hash": hash(password)}}
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
		return fmt.Errorf("%w: node %q already belongs to another machine: give this one another name (--node-name), or, if that machine is gone for good, `kubectl delete node %s` (its node password goes with it)", ErrNodeTaken, node, node)
	}
	return nil
}
