package secretargs

import (
	"strings"
	"unsafe"
)

// Scrub overwrites the hidden values in the process's own argument memory. args must be
// os.Args itself: on Linux the Go runtime does not copy argv, so its strings are the bytes
// /proc/self/cmdline shows, and writable. Whatever must keep a value copies it first (Own).
func Scrub(args []string, h Hidden) {
	for i := range h {
		if i <= 0 || i >= len(args) || len(args[i]) == 0 {
			continue
		}
		b := unsafe.Slice(unsafe.StringData(args[i]), len(args[i]))
		from := 0
		if strings.HasPrefix(args[i], "-") {
			if eq := strings.IndexByte(args[i], '='); eq >= 0 {
				from = eq + 1
			}
		}
		for j := from; j < len(b); j++ {
			b[j] = '*'
		}
	}
}

// Own returns a copy of args whose strings share no memory with them, for the program to
// keep once Scrub has overwritten the originals.
func Own(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.Clone(a)
	}
	return out
}
