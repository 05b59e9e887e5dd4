package supervisor

import (
	"bytes"
	"context"
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
