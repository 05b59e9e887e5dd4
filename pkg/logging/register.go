package logging

import (
	"os"

	"github.com/go-logr/logr"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

var (
	defaultOut = NewOut(os.Stderr)
	verbosity  int
)

type factory struct{}

func (factory) Create(c logsapi.LoggingConfiguration, _ logsapi.LoggingOptions) (logr.Logger, logsapi.RuntimeControl) {
	verbosity = int(c.Verbosity)
	return logr.New(NewKlogSink(defaultOut, &verbosity)), logsapi.RuntimeControl{}
}

func init() {
	// Stable: selectable without feature gates.
	_ = logsapi.RegisterLogFormat(Format, factory{}, logsapi.LoggingStableOptions)
}

// Setup routes Outpost's klog output (before any upstream component applies its logging config
// with format "outpost") and returns the shared line writer.
func Setup(v int) *Out {
	verbosity = v
	klog.SetLogger(logr.New(NewKlogSink(defaultOut, &verbosity)))
	return defaultOut
}
