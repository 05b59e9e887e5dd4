package token

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestStoreLifecycle(t *testing.T) {
	client := fake.NewClientset()
	now := time.Unix(1_800_000_000, 0)
	s := Store{Client: client, Now: func() time.Time { return now }}
	ctx := context.Background()
	c := ca(t, "a")
	tok, err := s.Create(ctx, c, time.Minute, "for the lab")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := CAHash(c); tok.CAHash != h {
		t.Error("created token not pinned to the CA")
	}
	forever, _ := s.Create(ctx, c, 0, "")
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
	for _, i := range list {
		if i.ID == tok.ID && (i.Description != "for the lab" || !i.Expires.Equal(now.Add(time.Minute))) {
			t.Errorf("info %+v", i)
		}
		if i.ID == forever.ID && !i.Expires.IsZero() {
			t.Errorf("ttl 0 expires: %+v", i)
		}
	}
	if err := s.Check(ctx, tok); err != nil {
		t.Errorf("fresh token refused: %v", err)
	}
	if err := s.Check(ctx, Token{ID: tok.ID, Secret: "0123456789abcdef"}); !errors.Is(err, ErrUnknown) {
		t.Errorf("wrong secret: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := s.Check(ctx, tok); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	if err := s.Check(ctx, forever); err != nil {
		t.Errorf("token without expiry refused: %v", err)
	}
	if err := s.Delete(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, tok.ID); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("second delete: %v", err)
	}
	_ = metav1.NamespaceSystem
}

const (
	testID     = "abc123"
	testSecret = "0123456789abcdef"
)

// putToken stores what Create would for testID/testSecret, after edit changes it.
func putToken(t *testing.T, s Store, edit func(*corev1.Secret)) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretPrefix + testID, Namespace: namespace}, Type: secretType,
		Data: bytesOf(map[string]string{"token-id": testID, "token-secret": testSecret, "usage-outpost-join": "true"})}
	if edit != nil {
		edit(sec)
	}
	if _, err := s.Client.CoreV1().Secrets(namespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// refusal is what Check says to a token nobody stored: every other refusal before the
// secret is proven must read exactly the same.
func refusal(t *testing.T) error {
	t.Helper()
	s := Store{Client: fake.NewClientset()}
	err := s.Check(context.Background(), Token{ID: testID, Secret: testSecret})
	if !errors.Is(err, ErrUnknown) || strings.Contains(err.Error(), testID) {
		t.Fatalf("unknown ID: %v", err)
	}
	return err
}

func TestCheckRefusesNonJoinSecrets(t *testing.T) {
	want := refusal(t).Error()
	for _, c := range []struct {
		name string
		edit func(*corev1.Secret)
	}{
		{"opaque type", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }},
		{"no type", func(s *corev1.Secret) { s.Type = "" }},
		{"usage missing", func(s *corev1.Secret) { delete(s.Data, "usage-outpost-join") }},
		{"usage false", func(s *corev1.Secret) { s.Data["usage-outpost-join"] = []byte("false") }},
		{"usage not exactly true", func(s *corev1.Secret) { s.Data["usage-outpost-join"] = []byte("True") }},
		{"no secret stored", func(s *corev1.Secret) { delete(s.Data, "token-secret") }},
		{"valid", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Store{Client: fake.NewClientset()}
			putToken(t, s, c.edit)
			err := s.Check(context.Background(), Token{ID: testID, Secret: testSecret})
			if c.edit == nil {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnknown) || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

// A Secret stored without token-secret must not be matched by a presented empty secret.
func TestCheckRefusesMalformedPresented(t *testing.T) {
	want := refusal(t).Error()
	s := Store{Client: fake.NewClientset()}
	putToken(t, s, func(sec *corev1.Secret) { delete(sec.Data, "token-secret") })
	for _, p := range []Token{{ID: testID}, {ID: testID + "/x", Secret: testSecret}, {ID: "", Secret: testSecret}} {
		if err := s.Check(context.Background(), p); !errors.Is(err, ErrUnknown) || err.Error() != want {
			t.Errorf("%+v: got %v, want %q", p, err, want)
		}
	}
}

func TestCheckExpiry(t *testing.T) {
	want := refusal(t).Error()
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name, expiration string
		expired          bool
		says             string
	}{
		{"future", now.Add(time.Second).UTC().Format(time.RFC3339), false, ""},
		{"never", "", false, ""},
		{"past", now.Add(-time.Second).UTC().Format(time.RFC3339), true, "expired at"},
		{"now", now.UTC().Format(time.RFC3339), true, "expired at"},
		{"unparsable", "tomorrow", true, "unreadable expiration"},
		{"not RFC3339", now.Add(time.Hour).UTC().Format(time.RFC1123), true, "unreadable expiration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Store{Client: fake.NewClientset(), Now: func() time.Time { return now }}
			putToken(t, s, func(sec *corev1.Secret) {
				if c.expiration != "" {
					sec.Data["expiration"] = []byte(c.expiration)
				}
			})
			ctx := context.Background()
			err := s.Check(ctx, Token{ID: testID, Secret: testSecret})
			switch {
			case !c.expired && err != nil:
				t.Errorf("refused: %v", err)
			case c.expired && (!errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), c.says)):
				t.Errorf("got %v, want ErrExpired saying %q", err, c.says)
			}
			// Without the secret, an expired token is as unknown as any other.
			err = s.Check(ctx, Token{ID: testID, Secret: "fedcba9876543210"})
			if !errors.Is(err, ErrUnknown) || errors.Is(err, ErrExpired) || err.Error() != want {
				t.Errorf("wrong secret: got %v, want %q", err, want)
			}
			list, err := s.List(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("list %v %v", list, err)
			}
			// The CLI prints "never" for a zero Expires, so an expired token needs a non-zero one.
			if i := list[0]; i.Expired(now) != c.expired || (c.expired && i.Expires.IsZero()) {
				t.Errorf("listed as %+v, Expired %v", i, i.Expired(now))
			}
		})
	}
}
