package memtrim

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"
)

const maps = `00400000-00a00000 r--p 00000000 08:01 42  /data/bin/outpost
00a00000-01000000 r-xp 00600000 08:01 42  /data/bin/outpost
01000000-01100000 rw-p 00c00000 08:01 42  /data/bin/outpost
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 08:01 43  /data/bin/outpost.old
7f0000002000-7f0000003000 r--p 00000000 08:01 44  /data/my bin/outpost
`

// Only the executable's own read-only mappings are advised: not its data segment, not the heap, not another file that merely
// shares a prefix; a path with a space is read whole.
func TestRanges(t *testing.T) {
	got := Ranges([]byte(maps), "/data/bin/outpost")
	want := []Range{{0x400000, 0x600000}, {0xa00000, 0x600000}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	if got := Ranges([]byte(maps), "/data/my bin/outpost"); len(got) != 1 || got[0].Start != 0x7f0000002000 {
		t.Errorf("path with a space: %x", got)
	}
}

func TestRelease(t *testing.T) {
	var advised []Range
	h := Host{Exe: func(int) (string, error) { return "/data/bin/outpost", nil },
		Maps:    func(int) ([]byte, error) { return []byte(maps), nil },
		PageOut: func(_ int, r []Range) error { advised = r; return nil }}
	n, err := h.Release(7)
	if err != nil || n != 0xc00000 || len(advised) != 2 {
		t.Fatalf("got %d %v %v", n, err, advised)
	}
	h.PageOut = func(int, []Range) error { return syscall.ENOSYS }
	if _, err := h.Release(7); !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("an old kernel's refusal: %v", err)
	}
	h.Exe = func(int) (string, error) { return "/elsewhere", nil }
	if _, err := h.Release(7); err == nil {
		t.Error("no mapping of the executable: want an error")
	}
}

// The component releases once, after its delay, and Stop before then releases nothing.
func TestReleaserWaitsAndStops(t *testing.T) {
	var mu sync.Mutex
	var calls []int
	h := Host{Exe: func(int) (string, error) { return "/data/bin/outpost", nil },
		Maps: func(int) ([]byte, error) { return []byte(maps), nil },
		PageOut: func(pid int, _ []Range) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, pid)
			return nil
		}}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := &Releaser{Host: h, After: 50 * time.Millisecond, Pids: func() []int { return []int{1, 2} }, Log: log}
	r.Start(context.Background())
	time.Sleep(300 * time.Millisecond)
	r.Stop(context.Background())
	mu.Lock()
	if !reflect.DeepEqual(calls, []int{1, 2}) {
		t.Errorf("released %v, want [1 2]", calls)
	}
	calls = nil
	mu.Unlock()
	r = &Releaser{Host: h, After: time.Hour, Pids: func() []int { return []int{1} }, Log: log}
	r.Start(context.Background())
	r.Stop(context.Background())
	if len(calls) != 0 {
		t.Errorf("released %v before its time", calls)
	}
}

// On this machine's kernel the real call pages out this test's own binary.
func TestLinuxReleasesOwnBinary(t *testing.T) {
	n, err := Linux().Release(os.Getpid())
	if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) {
		t.Skipf("kernel or privileges refuse process_madvise: %v", err)
	}
	if err != nil || n == 0 {
		t.Fatalf("got %d %v", n, err)
	}
}
