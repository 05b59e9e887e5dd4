package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child: SUPERVISOR_CHILD picks the behaviour.
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISOR_CHILD") {
	case "crash":
		os.Stdout.WriteString("hello from child\n")
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		os.Stdout.WriteString("stubborn\n")
		time.Sleep(time.Hour)
	case "serve":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		os.Stdout.WriteString("serving\n")
		<-c
		os.Exit(0)
	case "long-line":
		// One line far over the cap, then a short one; then wait to be stopped.
		os.Stderr.Write(append(bytes.Repeat([]byte("x"), 2<<20), '\n'))
		os.Stderr.WriteString("after\n")
		time.Sleep(time.Hour)
	case "env":
		for _, kv := range os.Environ() {
			os.Stdout.WriteString("env " + kv + "\n")
		}
		os.Stdout.WriteString("env-end\n")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func child(t *testing.T, mode string, out *syncBuf) *Supervisor {
	exe, _ := os.Executable()
	return New(Process{Name: "kid", Path: exe, Args: []string{"-test.run=^$"}, Env: []string{"SUPERVISOR_CHILD=" + mode},
		Out: out, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, StopTimeout: 300 * time.Millisecond})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartsAndTagsOutput(t *testing.T) {
	out := &syncBuf{}
	s := child(t, "crash", out)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three launches", func() bool { return s.Starts() >= 3 })
	s.Stop(context.Background())
	if !strings.Contains(out.String(), "[kid] hello from child") {
		t.Errorf("output not tagged: %q", out.String())
	}
	if !strings.Contains(out.String(), "restarting in") {
		t.Errorf("restart not logged: %q", out.String())
	}
}

func TestStopGracefulAndForced(t *testing.T) {
	for _, mode := range []string{"serve", "ignore-term"} {
		t.Run(mode, func(t *testing.T) {
			out := &syncBuf{}
			s := child(t, mode, out)
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "child output", func() bool { return strings.Contains(out.String(), "[kid]") })
			pid := s.Pid()
			start := time.Now()
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pid, 0); err == nil {
				t.Fatalf("child %d still alive after Stop", pid)
			}
			if mode == "ignore-term" && time.Since(start) < 300*time.Millisecond {
				t.Error("stubborn child should have been killed only after the timeout")
			}
			if s.Starts() != 1 {
				t.Errorf("restarted during stop: %d starts", s.Starts())
			}
			s.Stop(context.Background()) // idempotent
		})
	}
}

func TestMissingBinary(t *testing.T) {
	s := New(Process{Name: "x", Path: "/nonexistent/bin"})
	if err := s.Start(); err == nil {
		t.Fatal("want error for missing binary")
	}
	s.Stop(context.Background())
}

// A line longer than the cap used to stop the reader for good: the child then blocked on its
// next write and Stop hung even after SIGKILL.
func TestLongLineIsCutAndReadingGoesOn(t *testing.T) {
	out := &syncBuf{}
	s := child(t, "long-line", out)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line after the long one", func() bool { return strings.Contains(out.String(), "[kid] after\n") })
	stopped := make(chan struct{})
	go func() { s.Stop(context.Background()); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hung")
	}
	got := out.String()
	want := fmt.Sprintf(" …[cut %d bytes]\n", 2<<20-maxLine)
	if !strings.Contains(got, want) {
		t.Errorf("long line not cut with %q", want)
	}
	for _, l := range strings.Split(got, "\n") {
		if len(l) > maxLine+100 {
			t.Errorf("a %d-byte line got through", len(l))
		}
	}
}

func TestChildEnvDropsOutpostVars(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "OUTPOST_TOKEN=K10secret", "OUTPOST_DATA_DIR=/d", "HOME=/root", "MY_OUTPOST_X=1"}, "A=b")
	want := []string{"PATH=/bin", "HOME=/root", "MY_OUTPOST_X=1", "A=b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestChildDoesNotInheritToken(t *testing.T) {
	t.Setenv("OUTPOST_TOKEN", "K10secret::server:abc")
	t.Setenv("OUTPOST_URL", "https://10.0.0.1:6443")
	out := &syncBuf{}
	s := child(t, "env", out)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's environment", func() bool { return strings.Contains(out.String(), "[kid] env-end") })
	s.Stop(context.Background())
	got := out.String()
	if strings.Contains(got, "OUTPOST_") || strings.Contains(got, "K10secret") {
		t.Errorf("an OUTPOST_ variable reached the child:\n%s", got)
	}
	if !strings.Contains(got, "[kid] env SUPERVISOR_CHILD=env") {
		t.Errorf("Process.Env did not reach the child:\n%s", got)
	}
}
