// Package supervisor runs a child process: restarts it with backoff when it dies, stops it
// with SIGTERM then SIGKILL, and pipes its output into the log line by line with a tag.
package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Process describes the child.
type Process struct {
	Name        string
	Path        string
	Args        []string
	Env         []string      // added to the parent's environment (less OUTPOST_*: see ChildEnv)
	Dir         string        // working directory; "" for the parent's
	Out         io.Writer     // where tagged output lines go
	StopTimeout time.Duration // SIGTERM → SIGKILL; default 20s
	MinBackoff  time.Duration // default 500ms
	MaxBackoff  time.Duration // default 30s
}

// Supervisor keeps one Process running until Stop.
type Supervisor struct {
	p        Process
	mu       sync.Mutex
	cmd      *exec.Cmd
	pid      int
	stopping bool
	done     chan struct{}
	starts   int
	lastErr  error
}

// New returns a supervisor that has not started anything yet.
func New(p Process) *Supervisor {
	if p.StopTimeout == 0 {
		p.StopTimeout = 20 * time.Second
	}
	if p.MinBackoff == 0 {
		p.MinBackoff = 500 * time.Millisecond
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.Out == nil {
		p.Out = os.Stderr
	}
	return &Supervisor{p: p}
}

// Start launches the child once and then keeps it running in the background. It fails only if
// the first launch fails (a missing binary, say).
func (s *Supervisor) Start() error {
	s.mu.Lock()
	if s.done != nil {
		s.mu.Unlock()
		return errors.New("already started")
	}
	s.done = make(chan struct{})
	s.mu.Unlock()
	exited, err := s.launch()
	if err != nil {
		close(s.done)
		return err
	}
	go s.loop(exited)
	return nil
}

// launch starts the child; the returned channel yields its exit state.
func (s *Supervisor) launch() (<-chan *os.ProcessState, error) {
	cmd := exec.Command(s.p.Path, s.p.Args...)
	cmd.Env = ChildEnv(s.p.Env...)
	cmd.Dir = s.p.Dir
	// Own process group: a Ctrl-C on the terminal reaches Outpost only, which then stops the
	// child in order. Pdeathsig: if Outpost is killed, the child goes too and is restarted
	// (and re-attaches to its running pods) by the next Outpost.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild (a shim) may hold the output pipe open after the child exits: do not let
	// Wait, and so Stop, hang on it.
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go s.pipe(pr)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", s.p.Path, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.pid = cmd.Process.Pid
	s.starts++
	s.mu.Unlock()
	exited := make(chan *os.ProcessState, 1)
	go func() {
		_ = cmd.Wait()
		pw.Close()
		s.mu.Lock()
		s.pid = 0
		s.mu.Unlock()
		exited <- cmd.ProcessState
	}()
	return exited, nil
}

// maxLine is the longest output line logged whole; the rest of a longer one is dropped.
const maxLine = 64 * 1024

// pipe logs the child's output line by line until EOF. It must never stop reading early: an
// undrained pipe blocks the child's next write, and then neither SIGTERM nor Wait gets past
// it (a bufio.Scanner gives up for good on one line over its buffer).
func (s *Supervisor) pipe(r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			head := keepWholeRunes(line)
			cut := len(line) - len(head)
			text := string(head) // ReadSlice's buffer is reused by the next read
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				cut += len(bytes.TrimRight(line, "\r\n"))
			}
			if cut > 0 { // a line of exactly maxLine bytes loses nothing
				text += fmt.Sprintf(" …[cut %d bytes]", cut)
			}
			s.logLine(text)
		} else if len(line) > 0 {
			s.logLine(string(bytes.TrimRight(line, "\r\n")))
		}
		if err != nil {
			return // EOF: the child and its Wait are done with the pipe
		}
	}
}

func (s *Supervisor) logLine(text string) {
	fmt.Fprintf(s.p.Out, "%s [%s] %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), s.p.Name, text)
}

// keepWholeRunes drops a UTF-8 character split by the cut at the end of b.
func keepWholeRunes(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// ChildEnv is the environment for a child: Outpost's own, less every OUTPOST_* variable (the
// join token may be among them, and a child has no use for them), plus extra.
func ChildEnv(extra ...string) []string {
	return childEnv(os.Environ(), extra...)
}

func childEnv(environ []string, extra ...string) []string {
	out := make([]string, 0, len(environ)+len(extra))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OUTPOST_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

func (s *Supervisor) loop(exited <-chan *os.ProcessState) {
	defer close(s.done)
	backoff := s.p.MinBackoff
	for {
		started := time.Now()
		state := <-exited
		s.mu.Lock()
		s.lastErr = fmt.Errorf("%s exited: %s", s.p.Name, state)
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(started) > 2*s.p.MaxBackoff {
			backoff = s.p.MinBackoff // it ran a good while: a fresh failure
		}
		s.logLine(fmt.Sprintf("%v; restarting in %s", s.lastErr, backoff))
		time.Sleep(backoff)
		backoff = min(backoff*2, s.p.MaxBackoff)
		s.mu.Lock()
		stopping = s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		next, err := s.launch()
		if err != nil {
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			failed := make(chan *os.ProcessState, 1)
			failed <- nil
			exited = failed
			continue
		}
		exited = next
	}
}

// Starts says how many times the child was launched.
func (s *Supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// LastError is why the child last exited, or nil.
func (s *Supervisor) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Pid of the running child, or 0.
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Stop sends SIGTERM, waits up to StopTimeout, then SIGKILL. Safe to call more than once and
// before Start.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	cmd, done, pid := s.cmd, s.done, s.pid
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	if pid != 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(s.p.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	cmd = s.cmd
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	<-done
	return nil
}
