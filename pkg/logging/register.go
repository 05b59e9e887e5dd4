package logging

import (
	"os"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

var (
	defaultOut   = NewOut(os.Stderr)
	verbosity    int
	defaultGuard *Guard
)

type factory struct{}

func (factory) Create(c logsapi.LoggingConfiguration, _ logsapi.LoggingOptions) (logr.Logger, logsapi.RuntimeControl) {
	verbosity = int(c.Verbosity)
	return logr.New(newSink()), logsapi.RuntimeControl{}
}

func init() {
	// Stable: selectable without feature gates.
	_ = logsapi.RegisterLogFormat(Format, factory{}, logsapi.LoggingStableOptions)
}

func newSink() *KlogSink {
	s := NewKlogSink(defaultOut, &verbosity)
	s.guard = defaultGuard
	return s
}

// Setup routes Outpost's klog output (before any upstream component applies its logging config
// with format "outpost") and returns the shared line writer. With guard, klog's Fatal and
// Exit, and logrus's Fatal, no longer end the process (klog.OsExit and logrus's ExitFunc are
// guard.Exit).
func Setup(v int, guard *Guard) *Out {
	verbosity, defaultGuard = v, guard
	if guard != nil {
		klog.OsExit = guard.Exit
		// kine (and any other library on logrus) exits through logrus's Fatal the same way
		guard.TakeLogrus(logrus.StandardLogger())
	}
	klog.SetLogger(logr.New(newSink()))
	return defaultOut
}
