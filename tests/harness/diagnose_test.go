package harness

import (
	"strings"
	"testing"
)

func TestSummarizeDump(t *testing.T) {
	dump := `SIGQUIT: quit
PC=0x1 m=0 sigcode=0

goroutine 1 gp=0xc000002380 m=nil [select, 3 minutes]:
runtime.gopark(0x0?)
	/usr/local/go/src/runtime/proc.go:435 +0xce
github.com/k3s-io/kine/pkg/logstructured/sqllog.(*SQLLog).poll(0xc0)
	/x.go:1 +0x1

goroutine 7 [select, 4 minutes]:
sync.(*Cond).Wait(0x0?)
	/x.go:1
github.com/k3s-io/kine/pkg/logstructured/sqllog.(*SQLLog).poll(0xc0)
	/x.go:1 +0x1

goroutine 9 [IO wait]:
internal/poll.runtime_pollWait(0x0)
	/x.go:1
`
	got := SummarizeDump(dump, 5)
	if !strings.Contains(got, "3 goroutines in the dump") || !strings.Contains(got, "    2 select in github.com/k3s-io/kine/pkg/logstructured/sqllog.(*SQLLog).poll") {
		t.Fatalf("summary:\n%s", got)
	}
	if strings.Contains(got, "IO wait") {
		t.Fatalf("a goroutine under a minute was counted:\n%s", got)
	}
}
