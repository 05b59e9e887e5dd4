package token

import (
	"context"
	"strings"
	"testing"
	"time"

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
	if tok.VerifyCA(c) != nil {
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
	if err := s.Check(ctx, Token{ID: tok.ID, Secret: "0123456789abcdef"}); err == nil || !strings.Contains(err.Error(), "wrong secret") {
		t.Errorf("wrong secret: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := s.Check(ctx, tok); err == nil || !strings.Contains(err.Error(), "expired") {
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
