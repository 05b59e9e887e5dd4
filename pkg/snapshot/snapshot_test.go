package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type fileSource struct {
	body string
	err  error
}

func (f fileSource) SaveTo(_ context.Context, path string) error {
	if f.err != nil {
		os.WriteFile(path, []byte("partial"), 0o644)
		return f.err
	}
	return os.WriteFile(path, []byte(f.body), 0o644)
}

func TestSaveListPruneDelete(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	s := Store{Dir: filepath.Join(t.TempDir(), "snapshots"), Now: func() time.Time { return clock }}
	ctx := context.Background()
	var names []string
	for i := 0; i < 4; i++ {
		in, err := s.Save(ctx, fileSource{body: "db"}, ScheduledName, "s1")
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, in.Name)
		clock = clock.Add(time.Minute)
	}
	if names[0] != "etcd-snapshot-s1-1700000000" {
		t.Errorf("name %s", names[0])
	}
	if st, _ := os.Stat(filepath.Join(s.Dir, names[0])); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if _, err := s.Save(ctx, fileSource{body: "db"}, OnDemandName, "s1"); err != nil {
		t.Fatal(err)
	}
	// The same second twice is refused, not overwritten.
	if _, err := s.Save(ctx, fileSource{body: "db"}, OnDemandName, "s1"); err == nil {
		t.Error("a second snapshot in the same second overwrote the first")
	}
	// A failed save leaves nothing under a snapshot's name.
	clock = clock.Add(time.Minute)
	if _, err := s.Save(ctx, fileSource{err: errors.New("disk full")}, OnDemandName, "s1"); err == nil {
		t.Error("failure not reported")
	}
	list, err := s.List()
	if err != nil || len(list) != 5 || list[0].Name != "on-demand-s1-1700000240" || list[1].Name != names[3] {
		t.Fatalf("list %+v %v", list, err)
	}
	deleted, err := s.Prune(ScheduledName, 2)
	if err != nil || len(deleted) != 2 || deleted[0] != names[1] || deleted[1] != names[0] {
		t.Fatalf("prune deleted %v %v", deleted, err)
	}
	if list, _ := s.List(); len(list) != 3 {
		t.Errorf("after prune %d, want 2 scheduled + 1 on-demand", len(list))
	}
	if _, err := s.Prune(ScheduledName, 0); err == nil {
		t.Error("retention 0 accepted")
	}
	if err := s.Delete(names[3], "../escape", "none"); err == nil {
		t.Error("bad names not reported")
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("delete: %d left", len(list))
	}
	for _, bad := range []string{"", "a/b", ".hidden"} {
		if _, err := s.Save(ctx, fileSource{}, bad, "s1"); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if l, err := (Store{Dir: filepath.Join(t.TempDir(), "none")}).List(); err != nil || len(l) != 0 {
		t.Errorf("missing dir: %v %v", l, err)
	}
}
