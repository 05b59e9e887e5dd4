package status

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// The socket answers with the health as it is at each request, to root only; without a run
// the command is told so.
func TestServeFetchPrint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "status.sock")
	ctx := context.Background()
	if _, err := Fetch(ctx, sock); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("nothing running: %v", err)
	}
	now := time.Now()
	health := []component.Health{{Stage: component.StageDatastore, Name: "kine", State: component.StateReady, Since: now.Add(-time.Minute)}}
	s := &Server{Socket: sock, Report: Report{Role: "server", Node: "s1", Started: now.Add(-2 * time.Minute)},
		Health: func() []component.Health { return health }}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v", fi.Mode(), err)
	}
	r, err := Fetch(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if bad := Print(&out, r, now); bad != 0 || !strings.Contains(out.String(), "datastore  kine       ready  1m0s") || !strings.HasPrefix(out.String(), "server s1, up 2m0s") {
		t.Errorf("%d bad:\n%s", bad, out.String())
	}
	health = append(health, component.Health{Stage: component.StageAPI, Name: "kube-apiserver", State: component.StateNotReady, Error: "readyz: 500", Since: now})
	r, err = Fetch(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if bad := Print(&out, r, now); bad != 1 || !strings.Contains(out.String(), "not-ready") || !strings.Contains(out.String(), "readyz: 500") {
		t.Errorf("%d bad:\n%s", bad, out.String())
	}
}
