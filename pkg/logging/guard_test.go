package logging

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// fatalIn runs klog.Fatalf in a goroutine of its own, as a library's loop would, and reports
// whether the goroutine's deferred calls ran and the code after the Fatal did not.
func fatalIn(msg string) (deferred, after bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { deferred = true }()
		klog.Fatalf("%s", msg)
		after = true
	}()
	wg.Wait()
	return deferred, after
}

func setupFatals(t *testing.T) (*Guard, *bytes.Buffer) {
	var b bytes.Buffer
	v := 0
	f := NewGuard()
	f.resolve = filepath.Base
	sink := NewKlogSink(NewOut(&b), &v)
	sink.resolve, sink.guard = filepath.Base, f
	klog.SetLogger(logr.New(sink))
	old := klog.OsExit
	klog.OsExit = f.Exit
	t.Cleanup(func() { klog.ClearLogger(); klog.OsExit = old })
	return f, &b
}

// A library's Fatal ends its goroutine, not the process: its component hears why, and the line
// is an ERROR; one with no handler goes to Otherwise; during a stop it is a call cut short.
func TestFatalEndsOnlyItsGoroutine(t *testing.T) {
	f, b := setupFatals(t)
	var heard, other []string
	f.Handle("guard_test.go", func(msg string) { heard = append(heard, msg) })
	deferred, after := fatalIn("iptables: exit status 4")
	if !deferred || after {
		t.Errorf("deferred %v, code after the Fatal ran %v", deferred, after)
	}
	if len(heard) != 1 || !strings.Contains(heard[0], "iptables: exit status 4") {
		t.Errorf("handler heard %q", heard)
	}
	if got := b.String(); !strings.Contains(got, "[guard_test.go] ERROR iptables: exit status 4") || strings.Contains(got, "FATAL") {
		t.Errorf("log %q", got)
	}

	f.Handle("guard_test.go", nil)
	f.Otherwise(func(comp, msg string) { other = append(other, comp+": "+msg) })
	fatalIn("storage failed")
	if len(other) != 1 || other[0] != "guard_test.go: storage failed" {
		t.Errorf("Otherwise heard %q", other)
	}

	// An exit without a line (klog.FlushAndExit) is named by its caller.
	done := make(chan struct{})
	go func() { defer close(done); klog.OsExit(3) }()
	<-done
	if len(other) != 2 || other[1] != "guard_test.go: exited with code 3 (see the lines before)" {
		t.Errorf("Otherwise heard %q", other)
	}
	other = other[:1]

	b.Reset()
	f.Stopping()
	if deferred, after := fatalIn("list rules: signal: terminated"); !deferred || after {
		t.Errorf("during the stop: deferred %v, after %v", deferred, after)
	}
	if got := b.String(); !strings.Contains(got, "INFO list rules") || len(other) != 1 {
		t.Errorf("during the stop: log %q, Otherwise %q", got, other)
	}
}

// logrus's Fatal (kine's), once Setup ran: its goroutine ends, its line is an ERROR (INFO during
// a stop), and Otherwise hears it, named by the code that called it.
func TestLogrusFatalEndsOnlyItsGoroutine(t *testing.T) {
	l := logrus.StandardLogger()
	var b bytes.Buffer
	oldExit, oldHooks, oldOut, oldOsExit, oldGuard := l.ExitFunc, l.ReplaceHooks(logrus.LevelHooks{}), l.Out, klog.OsExit, defaultGuard
	l.SetOutput(&b)
	t.Cleanup(func() {
		l.ExitFunc, klog.OsExit, defaultGuard = oldExit, oldOsExit, oldGuard
		l.ReplaceHooks(oldHooks)
		l.SetOutput(oldOut)
		klog.ClearLogger()
	})
	f := NewGuard()
	f.resolve = filepath.Base
	Setup(0, f)
	var other []string
	f.Otherwise(func(comp, msg string) { other = append(other, comp+": "+msg) })
	fatal := func(msg string) (deferred, after bool) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { deferred = true }()
			logrus.Fatalf("%s", msg)
			after = true
		}()
		<-done
		return deferred, after
	}
	if deferred, after := fatal("WATCH SEND EVENTS FOR PAST REVISION"); !deferred || after {
		t.Errorf("deferred %v, code after the Fatal ran %v", deferred, after)
	}
	if len(other) != 1 || other[0] != "guard_test.go: WATCH SEND EVENTS FOR PAST REVISION" {
		t.Errorf("Otherwise heard %q", other)
	}
	if got := b.String(); !strings.Contains(got, "level=error") || strings.Contains(got, "fatal") {
		t.Errorf("log %q", got)
	}
	b.Reset()
	f.Stopping()
	fatal("list: context canceled")
	if got := b.String(); !strings.Contains(got, "level=info") || len(other) != 1 {
		t.Errorf("during the stop: log %q, Otherwise %q", got, other)
	}
}

// A stopped component whose upstream code runs on (the kubelet) logs its errors below ERROR.
func TestQuietComponent(t *testing.T) {
	f, b := setupFatals(t)
	klog.Error("PLEG: containerd: connection refused")
	f.Quiet("guard_test.go")
	klog.Error("ListPodSandbox: connection refused")
	if got := b.String(); !strings.Contains(got, "ERROR PLEG") || strings.Contains(got, "ListPodSandbox") {
		t.Errorf("log %q", got)
	}
}

// Lines upstream logs as ERROR that are expected here keep their place below ERROR, the
// start-up ones only in the start-up window; during a stop a canceled call is no error.
func TestExpectedLines(t *testing.T) {
	f := NewGuard()
	notRegistered := `Unable to register mirror pod because node is not registered yet err="node \"s1\" not found"`
	for _, c := range []struct{ comp, line, want string }{
		{"kubelet", notRegistered, "INFO"},
		{"kubelet", `Failed to set rlimit on max file handles err="operation not permitted"`, "WARN"},
		{"kubelet", `Failed to start ContainerManager err="boom"`, "ERROR"},
		{"kube-apiserver", `Error updating node status, will retry`, "ERROR"}, // another component's
		{"kube-controller-manager", `sync "kube-system/coredns-7b5f68447" failed with read version: 313 is not as new as written version: 320 for group resource replicasets.apps`, "INFO"},
		{"k8s", `Failed to update lease err="Operation cannot be fulfilled on leases.coordination.k8s.io \"apiserver-2a7lobc6br72iyokqk7axnwzoi\": the object has been modified; please apply your changes to the latest version and try again"`, "INFO"},
		{"kube-apiserver", `Error while syncing ConfigMap err="namespaces \"kube-system\" not found"`, "INFO"},
		{"kube-apiserver", `error resolving kube-system/metrics-server: service "metrics-server" not found`, "INFO"},
	} {
		if got := f.errorLevel(c.comp, c.line); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.comp, c.line, got, c.want)
		}
	}
	f.Started()
	f.started = f.started.Add(-2 * startupWindow)
	if got := f.errorLevel("kubelet", notRegistered); got != "ERROR" {
		t.Errorf("a start-up line long after the start: %s", got)
	}
	if got := f.errorLevel("kube-apiserver", `error resolving kube-system/metrics-server: service "metrics-server" not found`); got != "ERROR" {
		t.Errorf("metrics-server's Service missing long after the start: %s", got)
	}
	if got := f.errorLevel("flannel", "could not watch leases: context canceled"); got != "ERROR" {
		t.Errorf("a canceled call while running: %s", got)
	}
	f.Stopping()
	if got := f.errorLevel("flannel", "could not watch leases: context canceled"); got != "INFO" {
		t.Errorf("a canceled call during the stop: %s", got)
	}
}
