package harness

import (
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

func endedHow(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Diagnose says why a server did not come up when its log does not: how its process ended
// (with the kernel's OOM lines, a SIGKILL leaves none of its own), or, while it runs, what its
// goroutines have waited on for a minute or more. The last takes a SIGQUIT dump, which ends
// the process: call it only when the test has given up on the server.
func (s *Server) Diagnose() string {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return "process: not started"
	}
	select {
	case <-exited:
		s.mu.Lock()
		err := s.waitErr
		s.mu.Unlock()
		return fmt.Sprintf("process ended: %s%s", endedHow(err), oomLines())
	default:
	}
	before := len(s.Log())
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		return "process: running, and no goroutine dump within 20s of SIGQUIT"
	}
	log := s.Log()
	if len(log) < before {
		before = 0
	}
	return "process: was running; goroutines waiting 1 min or more (SIGQUIT dump):\n" + SummarizeDump(log[before:], 20)
}

// oomLines are the kernel's last OOM-killer lines, if any.
func oomLines() string {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return ""
	}
	var hits []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Out of memory") || strings.Contains(l, "oom-kill") || strings.Contains(l, "Killed process") {
			hits = append(hits, l)
		}
	}
	if len(hits) == 0 {
		return " (no OOM kill in dmesg)"
	}
	if len(hits) > 5 {
		hits = hits[len(hits)-5:]
	}
	return "\nkernel: " + strings.Join(hits, "\nkernel: ")
}

var goroutineHead = regexp.MustCompile(`^goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[([^,\]]+)(?:, (\d+) minutes)?[^\]]*\]:`)

// SummarizeDump groups a Go goroutine dump's long waiters (1 min or more) by wait reason and
// first frame outside the runtime and standard sync packages, most common first, at most n
// groups: a hang shows as the groups that should not be there.
func SummarizeDump(dump string, n int) string {
	counts := map[string]int{}
	total := 0
	for _, g := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		m := goroutineHead.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		total++
		if m[2] == "" {
			continue // under a minute
		}
		frame := "?"
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by") {
				continue
			}
			fn := l
			if i := strings.LastIndex(l, "("); i > 0 {
				fn = l[:i] // drop the argument list, keep a method's receiver
			}
			if !boring(fn) {
				frame = fn
				break
			}
		}
		counts[m[1]+" in "+frame]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines in the dump\n", total)
	for i, k := range keys {
		if i == n {
			fmt.Fprintf(&b, "… %d more groups\n", len(keys)-n)
			break
		}
		fmt.Fprintf(&b, "%5d %s\n", counts[k], k)
	}
	return b.String()
}

func boring(fn string) bool {
	for _, p := range []string{"runtime.", "sync.", "internal/", "time.", "context.", "os/signal.", "k8s.io/apimachinery/pkg/util/wait.", "k8s.io/client-go/tools/cache.(*processorListener)"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}
