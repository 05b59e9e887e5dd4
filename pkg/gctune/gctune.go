// Package gctune sets the Go garbage collector's default for Outpost's long-running
// processes: outpost itself and, through the environment, containerd and its shims.
package gctune

import "strconv"

// DefaultGOGC trades some GC CPU for memory: an idle single-node server holds about 160 MiB
// of live heap, and Go's default (100) lets the heap grow to twice that between collections.
// Measured on the idle tree: PSS 664 -> 618 MiB (outpost 509 -> 467, containerd 52 -> 48).
const DefaultGOGC = 50

// Host is what Apply changes: the environment children inherit and this process's collector.
type Host struct {
	Getenv       func(string) string
	Setenv       func(string, string) error
	SetGCPercent func(int) int
}

// Apply sets GOGC=DefaultGOGC for this process and its children unless the user set GOGC
// (which the Go runtime has applied already). It returns the value in force.
func Apply(h Host) (string, error) {
	if v := h.Getenv("GOGC"); v != "" {
		return v, nil
	}
	v := strconv.Itoa(DefaultGOGC)
	if err := h.Setenv("GOGC", v); err != nil {
		return "", err
	}
	h.SetGCPercent(DefaultGOGC)
	return v, nil
}
