package datadir

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestLockExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", ".lock")
	l, err := Acquire(p)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second Acquire in the same process is refused too.
	if _, err := Acquire(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second acquire: got %v, want ErrLocked", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	l2, err := Acquire(p)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
}
