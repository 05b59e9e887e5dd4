package token

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Extra join tokens live in the cluster as bootstrap-token Secrets (the format kubeadm uses),
// so every server sees the same set and their expiry is data, not a process's memory.
const (
	secretType   = corev1.SecretType("bootstrap.kubernetes.io/token")
	secretPrefix = "bootstrap-token-"
	namespace    = metav1.NamespaceSystem
)

// Info is one stored token, without its secret.
type Info struct {
	ID          string
	Description string
	Expires     time.Time // zero: never
}

// Expired reports whether the token is past its expiry at now.
func (i Info) Expired(now time.Time) bool { return !i.Expires.IsZero() && !now.Before(i.Expires) }

// Store manages the extra tokens.
type Store struct {
	Client kubernetes.Interface
	Now    func() time.Time
}

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Create makes a token pinned to caPEM; ttl 0 means it never expires.
func (s Store) Create(ctx context.Context, caPEM []byte, ttl time.Duration, description string) (Token, error) {
	t, err := Generate(caPEM)
	if err != nil {
		return Token{}, err
	}
	data := map[string]string{"token-id": t.ID, "token-secret": t.Secret, "description": description,
		"usage-bootstrap-authentication": "false", "usage-bootstrap-signing": "false", "usage-outpost-join": "true"}
	if ttl > 0 {
		data["expiration"] = s.now().Add(ttl).UTC().Format(time.RFC3339)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretPrefix + t.ID, Namespace: namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost"}}, Type: secretType, Data: bytesOf(data)}
	if _, err := s.Client.CoreV1().Secrets(namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return Token{}, fmt.Errorf("store token: %w", err)
	}
	return t, nil
}

// List returns every stored token, by ID.
func (s Store) List(ctx context.Context) ([]Info, error) {
	secs, err := s.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(secretType)})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []Info
	for _, sec := range secs.Items {
		if sec.Type != secretType {
			continue // the fake clientset ignores field selectors
		}
		i := Info{ID: string(sec.Data["token-id"]), Description: string(sec.Data["description"])}
		if e := string(sec.Data["expiration"]); e != "" {
			i.Expires, _ = time.Parse(time.RFC3339, e)
		}
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// Delete removes a token by ID.
func (s Store) Delete(ctx context.Context, id string) error {
	err := s.Client.CoreV1().Secrets(namespace).Delete(ctx, secretPrefix+id, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no token with ID %q: see `outpost token list`", id)
	}
	return err
}

// Why a presented token is refused.
var (
	ErrUnknown = errors.New("token unknown or wrong")
	ErrExpired = errors.New("token expired")
)

// Check validates a presented token against the stored ones: it must exist, match, and not
// have expired. (The join API uses this.)
func (s Store) Check(ctx context.Context, presented Token) error {
	sec, err := s.Client.CoreV1().Secrets(namespace).Get(ctx, secretPrefix+presented.ID, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%w: no token with ID %s", ErrUnknown, presented.ID)
	}
	stored := Token{ID: string(sec.Data["token-id"]), Secret: string(sec.Data["token-secret"])}
	if !stored.Matches(presented) {
		return fmt.Errorf("%w: wrong secret for token %s", ErrUnknown, presented.ID)
	}
	if e := string(sec.Data["expiration"]); e != "" {
		if exp, err := time.Parse(time.RFC3339, e); err == nil && !s.now().Before(exp) {
			return fmt.Errorf("%w: token %s expired at %s: create a new one with `outpost token create`", ErrExpired, presented.ID, e)
		}
	}
	return nil
}

func bytesOf(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}
