// Package memtrim hands back to the kernel the pages of a program's own file that only its
// start touched. A Go program's start (init functions, flag parsing, building the apiserver's
// OpenAPI models) touches code and data spread over its whole binary, and the kernel maps 64
// KiB around each touched page; those pages stay mapped, counted in the process's RSS and PSS,
// until memory runs short. Asking the kernel to page them out (MADV_PAGEOUT, Linux 5.4; for
// another process process_madvise, Linux 5.10) once the node runs leaves only what is used
// again: it is faulted back in from the page cache or the disk. Only clean, file-backed pages
// of the executable's read-only mappings are advised; the heap is untouched.
package memtrim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Range is one mapping: its start address and length.
type Range struct{ Start, Len uint64 }

// Host is what Release reads and calls; Linux() gives the real one.
type Host struct {
	Exe     func(pid int) (string, error) // readlink /proc/PID/exe
	Maps    func(pid int) ([]byte, error) // /proc/PID/maps
	PageOut func(pid int, r []Range) error
}

// Ranges are the read-only mappings of file exe in a /proc/PID/maps text. The writable one
// (the data segment) is left: its written pages are anonymous, and paging them out would
// mean swap.
func Ranges(maps []byte, exe string) []Range {
	var out []Range
	for _, line := range bytes.Split(maps, []byte("\n")) {
		// address perms offset dev inode path (the path may hold spaces)
		f := bytes.Fields(line)
		if len(f) < 6 || bytes.IndexByte(f[1], 'w') >= 0 || string(bytes.Join(f[5:], []byte(" "))) != exe {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(string(lo), 16, 64)
		b, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		out = append(out, Range{Start: a, Len: b - a})
	}
	return out
}

// Release pages out the mappings of process pid's own executable; it returns how many bytes
// of address space it advised.
func (h Host) Release(pid int) (uint64, error) {
	exe, err := h.Exe(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	maps, err := h.Maps(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	r := Ranges(maps, exe)
	if len(r) == 0 {
		return 0, fmt.Errorf("process %d: no mapping of %s", pid, exe)
	}
	var n uint64
	for _, x := range r {
		n += x.Len
	}
	if err := h.PageOut(pid, r); err != nil {
		return 0, fmt.Errorf("process %d (%s): %w", pid, exe, err)
	}
	return n, nil
}

// Releaser is a component: once, After its start (the node's last phase), it releases the
// start-up pages of each process Pids names (this one, containerd).
type Releaser struct {
	Host  Host
	After time.Duration
	Pids  func() []int
	Log   *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (r *Releaser) Name() string               { return "page-release" }
func (r *Releaser) Init(context.Context) error { return nil }

// Start waits After in the background, then releases; it never fails the node: a kernel
// without process_madvise only keeps those pages mapped, as before.
func (r *Releaser) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.After):
		}
		var total uint64
		var errs []error
		for _, pid := range r.Pids() {
			n, err := r.Host.Release(pid)
			total += n
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			r.Log.Debug("start-up pages kept", "err", err)
		}
		r.Log.Debug("start-up pages released", "advised-MiB", total>>20)
	}()
	return nil
}

func (r *Releaser) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	return nil
}
