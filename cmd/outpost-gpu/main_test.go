package main

import (
	"net"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
)

// The helper serves the mock over its stdio, and refuses a mock it does not know.
func TestServesMock(t *testing.T) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	serve := func(lib gpulib.Lib) error { return gpuhelper.Serve(lib, a) }
	go func() { done <- run([]string{"--mock", "dgxa100"}, serve) }()
	n, err := gpuhelper.Call[detect.Node](b, "Detect")
	if err != nil || len(n.GPUs) != 8 {
		t.Fatalf("detect: %+v %v", n, err)
	}
	b.Close()
	if err := <-done; err != nil {
		t.Errorf("helper ended with %v after its stdin closed", err)
	}
	if err := run([]string{"--mock", "dgx2"}, serve); err == nil || !strings.Contains(err.Error(), "only dgxa100") {
		t.Errorf("unknown mock: %v", err)
	}
}

// A hook command makes the helper nvidia-cdi-hook; its own flags never do.
func TestHookDispatch(t *testing.T) {
	for args, want := range map[string]bool{"update-ldcache --folder /usr/lib": true, "noop": true,
		"--library /usr/lib/libnvidia-ml.so.1": false, "--mock dgxa100": false, "": false} {
		if got := isHook(strings.Fields(args)); got != want {
			t.Errorf("%q: hook %v, want %v", args, got, want)
		}
	}
	if err := hook([]string{"outpost-gpu", "noop"}); err != nil {
		t.Errorf("the toolkit's noop hook: %v", err)
	}
}
