package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

func TestComponentOf(t *testing.T) {
	for file, want := range map[string]string{
		"k8s.io/kubernetes@v1.37.2/pkg/kubelet/kubelet.go":          "kubelet",
		"k8s.io/kubernetes@v1.37.2/pkg/proxy/iptables/proxier.go":   "kube-proxy",
		"k8s.io/apiserver@v0.37.2/pkg/server/healthz.go":            "kube-apiserver",
		"k8s.io/kubernetes@v1.37.2/pkg/controller/nodeipam/ipam.go": "kube-controller-manager",
		"k8s.io/kubernetes@v1.37.2/pkg/scheduler/schedule_one.go":   "kube-scheduler",
		"k8s.io/client-go@v0.37.2/tools/cache/reflector.go":         "k8s-client",
		"github.com/k3s-io/kine@v0.17.6/pkg/server/watch.go":        "kine",
		"somewhere/else.go": "k8s",
	} {
		if got := ComponentOf(file); got != want {
			t.Errorf("%s: got %s want %s", file, got, want)
		}
	}
}

func TestKlogSinkTagsAndFilters(t *testing.T) {
	var b bytes.Buffer
	v := 1
	sink := NewKlogSink(NewOut(&b), &v)
	sink.resolve = filepath.Base
	l := logr.New(sink)
	l.Info("hello", "k", "v w")
	l.V(2).Info("hidden")
	line := b.String()
	// The caller is this test file in outpost's own module.
	if !strings.Contains(line, "[logging_test.go] INFO hello k=\"v w\"") || strings.Contains(line, "hidden") {
		t.Errorf("line = %q", line)
	}
	// At the default verbosity only errors pass.
	b.Reset()
	v = 0
	l.Info("chatter")
	l.Error(errors.New("boom"), "failed")
	if got := b.String(); strings.Contains(got, "chatter") || !strings.Contains(got, "ERROR failed err=boom") {
		t.Errorf("at -v 0: %q", got)
	}
}

// klog's Fatal and Exit end the process right after the line: at -v 0 it must still show, or
// the process exits 255 without a word (a joining server did, in the HA tests).
func TestKlogFatalShown(t *testing.T) {
	var b bytes.Buffer
	v := 0
	sink := NewKlogSink(NewOut(&b), &v)
	sink.resolve = filepath.Base
	klog.SetLogger(logr.New(sink))
	type exit int
	exited := exit(-1)
	// klog does not expect its exit to return: a panic stands in for it.
	klog.OsExit = func(code int) { panic(exit(code)) }
	t.Cleanup(func() { klog.ClearLogger(); klog.OsExit = os.Exit })
	klog.Info("chatter")
	func() {
		defer func() { exited, _ = recover().(exit) }()
		klog.Exitf("storage failed: %s", "boom")
	}()
	got := b.String()
	if strings.Contains(got, "chatter") || !strings.Contains(got, "FATAL storage failed: boom") || exited != 1 {
		t.Errorf("exit %d, output %q", exited, got)
	}
}

func TestSlogHandlerComponent(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(NewHandler(NewOut(&b), slog.LevelInfo)).With("component", "deploy")
	log.Info("applied", "file", "coredns.yaml")
	log.Debug("quiet")
	if got := b.String(); !strings.Contains(got, "[deploy] INFO applied file=coredns.yaml") || strings.Contains(got, "quiet") {
		t.Errorf("got %q", got)
	}
}
