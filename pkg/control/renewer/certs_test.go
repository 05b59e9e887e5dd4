package renewer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestCheckRenewsAndRewrites(t *testing.T) {
	var renews, writes int
	r := &Renewer{Interval: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Renew: func() ([]string, error) {
			renews++
			if renews == 2 {
				return nil, errors.New("disk full")
			}
			return []string{"serving-kube-apiserver"}, nil
		},
		Written: func() error { writes++; return nil }}
	r.Check()
	r.Check()
	if renews != 2 || writes != 2 {
		t.Errorf("renews %d writes %d", renews, writes)
	}
	if err := (&Renewer{}).Init(context.Background()); err == nil {
		t.Error("zero interval accepted")
	}
}
