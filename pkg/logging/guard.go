package logging

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Guard stands in for klog's process exit (klog.OsExit): an embedded library's klog.Fatal
// ends the goroutine that called it, not the process. The component it came from hears of
// it (Handle) and decides: kube-router's policy controller is restarted; any other component
// stops the process cleanly through Otherwise. A Fatal during a stop (a call the stop cut
// short) is logged below ERROR and ends only its goroutine. What the goroutine left half
// done (a lock taken without defer, a sync.Once marked done) stays so: the component is
// built again, or the process stops, within the stop's time limit.
type Guard struct {
	mu       sync.Mutex
	stopping bool
	handlers map[string]func(msg string)
	pending  map[string]fatal // a Fatal's line, by goroutine, until its Exit
	quiet    map[string]bool  // stopped components whose upstream code runs on
	started  time.Time        // when every stage ran: the start-up window's start
	other    func(component, msg string)
	goexit   func()
	resolve  func(file string) string
}

// fatal is a klog.Fatal's component and line, as the log named them.
type fatal struct{ comp, msg string }

// MainExit is the panic a Fatal raises in the main goroutine (start-up code), which cannot
// just end: main recovers it and exits with its code after the deferred cleanups ran.
type MainExit int

// NewGuard returns the guard.
func NewGuard() *Guard {
	return &Guard{handlers: map[string]func(string){}, pending: map[string]fatal{}, quiet: map[string]bool{}, goexit: runtime.Goexit, resolve: ComponentOf}
}

// Handle routes the Fatals of component (a ComponentOf name) to f, called in the goroutine
// that is about to end: f must not block.
func (f *Guard) Handle(component string, h func(msg string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[component] = h
}

// Otherwise routes the Fatals of components with no handler of their own to h.
func (f *Guard) Otherwise(h func(component, msg string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.other = h
}

// Started marks the role as started: the start-up lines expected until now are errors again
// a minute from now.
func (f *Guard) Started() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = time.Now()
}

// Stopping marks the process as stopping: a Fatal from now on is a call cut short.
func (f *Guard) Stopping() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopping = true
}

// Quiet marks component as stopped though its upstream code runs on until the process ends
// (the kubelet and kube-proxy cannot be stopped in-process): the errors it logs from now
// on, calls to parts stopped after it, are below ERROR.
func (f *Guard) Quiet(component string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quiet[component] = true
}

// severity is the level a Fatal's line is logged at, noting its message for Exit.
func (f *Guard) severity(component, msg string) string {
	id := goroutineID()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[id] = fatal{component, msg}
	if f.stopping {
		return "INFO"
	}
	return "ERROR"
}

// logrusFatals gives a logrus Fatal (kine's) what the sink gives klog's: the level the guard
// decides (ERROR, or INFO during a stop) instead of FATAL, and its line kept for Exit.
type logrusFatals struct{ g *Guard }

func (h logrusFatals) Levels() []logrus.Level { return []logrus.Level{logrus.FatalLevel} }

func (h logrusFatals) Fire(e *logrus.Entry) error {
	e.Level = logrus.ErrorLevel
	if h.g.severity(h.g.resolve(callerFile()), e.Message) == "INFO" {
		e.Level = logrus.InfoLevel
	}
	return nil
}

// TakeLogrus routes l's Fatal calls through the guard: logged at the level it decides, then
// Exit instead of the process's exit.
func (f *Guard) TakeLogrus(l *logrus.Logger) {
	l.ExitFunc = f.Exit
	l.AddHook(logrusFatals{f})
}

// Exit is klog.OsExit: it ends the calling goroutine after telling its component. The
// component is the one the Fatal's line named (klog's *Depth calls name their caller's
// caller); an exit without a line (klog.FlushAndExit) is named by its caller.
func (f *Guard) Exit(code int) {
	id := goroutineID()
	if id == "1" { // the main goroutine cannot just end
		panic(MainExit(code))
	}
	byCaller := fatal{f.resolve(callerFile()), fmt.Sprintf("exited with code %d (see the lines before)", code)}
	f.mu.Lock()
	ft, ok := f.pending[id]
	if !ok {
		ft = byCaller
	}
	delete(f.pending, id)
	stopping, h, other := f.stopping, f.handlers[ft.comp], f.other
	f.mu.Unlock()
	switch {
	case stopping:
	case h != nil:
		h(ft.msg)
	case other != nil:
		other(ft.comp, ft.msg)
	}
	f.goexit()
}

// callerFile is the source file of the first frame outside klog, logrus and Exit: the code
// that called klog.Fatal or logrus.Fatal.
func callerFile() string {
	var pcs [48]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		fr, more := frames.Next()
		if !strings.HasPrefix(fr.Function, "k8s.io/klog/") && !strings.HasPrefix(fr.Function, "github.com/sirupsen/logrus") {
			return fr.File
		}
		if !more {
			return ""
		}
	}
}

// goroutineID is the calling goroutine's number, from its stack header ("goroutine N [").
func goroutineID() string {
	var b [64]byte
	h := b[:runtime.Stack(b[:], false)]
	h = bytes.TrimPrefix(h, []byte("goroutine "))
	if i := bytes.IndexByte(h, ' '); i > 0 {
		return string(h[:i])
	}
	return ""
}
