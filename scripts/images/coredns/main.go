// Command coredns is CoreDNS with only the plugins a cluster's DNS needs: about half the size
// of the stock build. The plugin order is CoreDNS's own (core/dnsserver), whatever is linked.
package main

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	_ "github.com/coredns/caddy/onevent"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/coredns/coredns/coremain"
)

func main() {
	go releaseStartPages(time.Minute)
	coremain.Run()
}

// madvPageout is MADV_PAGEOUT (Linux 5.4), which package syscall lacks.
const madvPageout = 21

// releaseStartPages pages out, once, this binary's own mappings. CoreDNS's start touches code
// all over its 50 MB file and the kernel keeps about 20 MiB of it mapped at idle until memory
// runs short; what is used again is faulted back in from the page cache. Outpost does the
// same for itself (pkg/memtrim, which this separate module cannot import). An older kernel
// refuses the advice and nothing changes.
func releaseStartPages(after time.Duration) {
	time.Sleep(after)
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	for _, line := range bytes.Split(maps, []byte("\n")) {
		f := bytes.Fields(line)
		// Read-only ones only: written pages of the data segment are anonymous, and paging
		// them out would mean swap.
		if len(f) != 6 || string(f[5]) != exe || bytes.IndexByte(f[1], 'w') >= 0 {
			continue
		}
		lo, hi, _ := bytes.Cut(f[0], []byte("-"))
		a, err1 := strconv.ParseUint(string(lo), 16, 64)
		b, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 == nil && err2 == nil && b > a {
			syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), madvPageout)
		}
	}
}
