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
	// Server marks the records it makes as a server's (ServerLabel): a server binds its name
	// even without a Node, and the cleaner, which frees names that have no Node, keeps them.
	Server bool
}

// ServerLabel marks a server's node-password record.
const ServerLabel = "outpost.io/server"

// SecretName is where the hash for node lives.
func SecretName(node string) string { return node + ".node-password.outpost" }

func hash(pw string) []byte {
	sum := sha256.Sum256([]byte(pw))
	return []byte(hex.EncodeToString(sum[:]))
}

// Verify accepts the password for node on a join, recording it on first use. A name that
// already has a Node but no recorded password was registered without a join (a hand-made
// Node, say): a token holder must not take it over.
func (p Passwords) Verify(ctx context.Context, node, password string) error {
	secrets := p.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	sec, err := secrets.Get(ctx, SecretName(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := p.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("%w: node %q is registered but has no node password on record, so no join may take it: give this machine another name (--node-name), or, if node %s is gone for good, `kubectl delete node %s`", ErrNodeTaken, node, node, node)
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("node password: look up node: %w", err)
		}
		if _, err := secrets.Create(ctx, p.record(node, password), metav1.CreateOptions{}); err == nil {
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
	return matches(sec, node, password)
}

// ErrNoRecord means the node has no password on record: it was deleted (`kubectl delete node`
// removes the record), so its old credentials no longer renew.
var ErrNoRecord = errors.New("no node password on record")

// Check accepts the password for a node renewing its certificates. Unlike a join it never
// records one: a deleted node stays deleted until it joins again with a token.
func (p Passwords) Check(ctx context.Context, node, password string) error {
	sec, err := p.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, SecretName(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w for node %q: it was deleted; join it again with a token", ErrNoRecord, node)
	} else if err != nil {
		return fmt.Errorf("node password: %w", err)
	}
	return matches(sec, node, password)
}

// Take records password for the server's own node, replacing any other: no join may take that
// name (the join API refuses it), so a record that differs is the server's own from before (a
// lost password file), and the server must not be locked out of its own node.
func (p Passwords) Take(ctx context.Context, node, password string) (replaced bool, err error) {
	secrets := p.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	sec, err := secrets.Get(ctx, SecretName(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := secrets.Create(ctx, p.record(node, password), metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("store node password: %w", err)
		}
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("node password: %w", err)
	}
	mark := p.Server && sec.Labels[ServerLabel] != "true" // a record from before servers were marked
	if matches(sec, node, password) == nil && !mark {
		return false, nil
	}
	replaced = matches(sec, node, password) != nil
	sec.Labels = p.record(node, password).Labels
	sec.Data = map[string][]byte{"hash": hash(password)}
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("store node password: %w", err)
	}
	return replaced, nil
}

func (p Passwords) record(node, password string) *corev1.Secret {
	labels := map[string]string{"app.kubernetes.io/managed-by": "outpost"}
	if p.Server {
		labels[ServerLabel] = "true"
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName(node), Namespace: metav1.NamespaceSystem, Labels: labels},
		Type: PasswordSecretType, Data: map[string][]byte{"hash": hash(password)}}
}

func matches(sec *corev1.Secret, node, password string) error {
	if subtle.ConstantTimeCompare(sec.Data["hash"], hash(password)) != 1 && sec.Labels[ServerLabel] == "true" {
		return fmt.Errorf("%w: %q is a server's name, bound to another machine: give this one another name (--node-name), or, if that server is gone for good, `outpost etcd member remove %s` on another server (its node password goes with it)", ErrNodeTaken, node, node)
	}
	if subtle.ConstantTimeCompare(sec.Data["hash"], hash(password)) != 1 {
		return fmt.Errorf("%w: node %q already belongs to another machine: give this one another name (--node-name), or, if that machine is gone for good, `kubectl delete node %s` (its node password goes with it)", ErrNodeTaken, node, node)
	}
	return nil
}
