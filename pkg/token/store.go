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
	// BadExpiration is the stored expiration when it is not RFC3339. Check refuses such a
	// token as expired, so Expires is then the Unix epoch: non-zero, and long past.
	BadExpiration string
}

// Expired reports whether the token is past its expiry at now.
func (i Info) Expired(now time.Time) bool {
	return i.BadExpiration != "" || (!i.Expires.IsZero() && !now.Before(i.Expires))
}

// usable reports whether sec is a join token Create could have written: another bootstrap
// token (kubeadm's, say) or a look-alike Secret must not let a node join.
func usable(sec *corev1.Secret) bool {
	return sec.Type == secretType && string(sec.Data["usage-outpost-join"]) == "true"
}

// expiration reads a token's expiry: zero for never; ok false when it does not parse.
func expiration(sec *corev1.Secret) (exp time.Time, ok bool) {
	e := string(sec.Data["expiration"])
	if e == "" {
		return time.Time{}, true
	}
	exp, err := time.Parse(time.RFC3339, e)
	return exp, err == nil
}

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
		if !usable(&sec) {
			continue // not a join token (kubeadm's, say); the fake clientset ignores field selectors
		}
		i := Info{ID: string(sec.Data["token-id"]), Description: string(sec.Data["description"])}
		var ok bool
		if i.Expires, ok = expiration(&sec); !ok {
			i.Expires, i.BadExpiration = time.Unix(0, 0).UTC(), string(sec.Data["expiration"])
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
	ErrUnknown = errors.New("token not accepted")
	ErrExpired = errors.New("token expired")
)

// notAccepted is the one refusal for an unknown ID, a wrong secret and a Secret that is not a
// join token alike: the join API answers anonymous callers, who must not learn which IDs exist.
func notAccepted() error {
	return fmt.Errorf("%w: check it against `outpost token list` or the server's token file", ErrUnknown)
}

// Check validates a presented token against the stored ones: it must exist, be a join token,
// match, and not have expired. (The join API uses this.)
func (s Store) Check(ctx context.Context, presented Token) error {
	// A malformed ID must not reach the Secret name, nor an empty secret match a Secret
	// without one; Parse guarantees both, but Check does not require its caller to parse.
	if !idRE.MatchString(presented.ID) || !secretRE.MatchString(presented.Secret) {
		return notAccepted()
	}
	sec, err := s.Client.CoreV1().Secrets(namespace).Get(ctx, secretPrefix+presented.ID, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		// Not the token's fault (a server still starting, say): the caller may retry.
		return fmt.Errorf("look up token: %w", err)
	}
	if err != nil || !usable(sec) {
		return notAccepted()
	}
	stored := Token{ID: string(sec.Data["token-id"]), Secret: string(sec.Data["token-secret"])}
	if !stored.Matches(presented) {
		return notAccepted()
	}
	// Only now, with the secret proven, may the caller learn that the token has expired.
	exp, ok := expiration(sec)
	if !ok {
		return fmt.Errorf("%w: token %s has an unreadable expiration %q: delete it and create a new one with `outpost token create`",
			ErrExpired, presented.ID, sec.Data["expiration"])
	}
	if !exp.IsZero() && !s.now().Before(exp) {
		return fmt.Errorf("%w: token %s expired at %s: create a new one with `outpost token create`", ErrExpired, presented.ID, exp.Format(time.RFC3339))
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
