package logging

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/go-logr/logr"
)

// Format is the component-base log format name that routes klog here.
const Format = "outpost"

// KlogSink is a logr sink for klog that names the component by the caller's source path:
// klog itself is global, so the path is the only reliable tag for non-contextual calls.
type KlogSink struct {
	out       *Out
	verbosity *int
	depth     int
	name      string
	values    string
	resolve   func(file string) string
	guard     *Guard // nil: klog's Fatal lines show as FATAL
}

// NewKlogSink returns the sink; verbosity is read at every call.
func NewKlogSink(out *Out, verbosity *int) *KlogSink {
	return &KlogSink{out: out, verbosity: verbosity, resolve: ComponentOf}
}

func (s *KlogSink) Init(info logr.RuntimeInfo) { s.depth += info.CallDepth }

// Enabled hides the upstream components' info lines (klog's warnings among them) at the
// default verbosity 0: their start-up and shutdown chatter is hundreds of lines. Errors always
// pass; -v N shows levels 0 to N. klog's Fatal and Exit calls reach a logr sink as level-0
// info too, just before klog ends the process (exit 255): those always pass, as FATAL, or the
// process would end without a word.
func (s *KlogSink) Enabled(level int) bool {
	return (*s.verbosity > 0 && level <= *s.verbosity) || (level == 0 && fromKlogFatal())
}

func (s *KlogSink) Info(level int, msg string, kv ...any) {
	severity, comp, line := "INFO", s.component(), s.format(msg, kv)
	if level == 0 && fromKlogFatal() {
		severity = "FATAL"
		if s.guard != nil { // the process goes on (Guard.Exit)
			severity = s.guard.severity(comp, line)
		}
	}
	s.out.Line(comp, severity, line)
}

// fromKlogFatal reports whether klog's Fatal* or Exit* functions are on the caller's stack:
// klog passes a logr sink no severity but error or info.
func fromKlogFatal() bool {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "k8s.io/klog/v2.Fatal") || strings.HasPrefix(f.Function, "k8s.io/klog/v2.Exit") {
			return true
		}
		if !more {
			return false
		}
	}
}

func (s *KlogSink) Error(err error, msg string, kv ...any) {
	if err != nil {
		kv = append([]any{"err", err}, kv...)
	}
	comp, line, level := s.component(), s.format(msg, kv), "ERROR"
	if s.guard != nil {
		level = s.guard.errorLevel(comp, line)
	}
	if level == "INFO" && *s.verbosity == 0 {
		return
	}
	s.out.Line(comp, level, line)
}

func (s *KlogSink) WithValues(kv ...any) logr.LogSink {
	n := *s
	n.values = s.values + kvString(kv)
	return &n
}

func (s *KlogSink) WithName(name string) logr.LogSink {
	n := *s
	if n.name == "" {
		n.name = name
	} else {
		n.name += "." + name
	}
	return &n
}

func (s *KlogSink) WithCallDepth(d int) logr.LogSink {
	n := *s
	n.depth += d
	return &n
}

func (s *KlogSink) format(msg string, kv []any) string {
	msg = strings.TrimRight(msg, "\n")
	if s.name != "" {
		msg = s.name + ": " + msg
	}
	return msg + s.values + kvString(kv)
}

// component maps the caller's file to a component; +2 skips this method and Info/Error (the
// logr layers are in depth).
func (s *KlogSink) component() string {
	_, file, _, ok := runtime.Caller(s.depth + 2)
	if !ok {
		return "k8s"
	}
	return s.resolve(file)
}

var owners = []struct{ part, comp string }{
	{"/cmd/kubelet/", "kubelet"}, {"/pkg/kubelet/", "kubelet"}, {"k8s.io/kubelet", "kubelet"},
	{"cri-client", "kubelet"}, {"/pkg/volume/", "kubelet"}, {"k8s.io/cri-", "kubelet"},
	{"/cmd/kube-proxy/", "kube-proxy"}, {"/pkg/proxy/", "kube-proxy"},
	{"/cmd/kube-scheduler/", "kube-scheduler"}, {"/pkg/scheduler/", "kube-scheduler"},
	{"k8s.io/kube-scheduler", "kube-scheduler"}, {"dynamic-resource-allocation", "kube-scheduler"},
	{"/cmd/kube-controller-manager/", "kube-controller-manager"}, {"/pkg/controller/", "kube-controller-manager"},
	{"k8s.io/controller-manager", "kube-controller-manager"}, {"k8s.io/cloud-provider", "kube-controller-manager"},
	{"/cmd/kube-apiserver/", "kube-apiserver"}, {"/pkg/controlplane/", "kube-apiserver"},
	{"/pkg/registry/", "kube-apiserver"}, {"/pkg/kubeapiserver/", "kube-apiserver"},
	{"k8s.io/apiserver", "kube-apiserver"}, {"kube-aggregator", "kube-apiserver"},
	{"apiextensions-apiserver", "kube-apiserver"}, {"/plugin/pkg/", "kube-apiserver"},
	{"kube-router", "network-policy"}, {"k3s-io/kine", "kine"}, {"flannel-io/flannel", "flannel"}, {"sigs.k8s.io/metrics-server", "metrics-server"}, {"k8s.io/client-go", "k8s-client"}, {"outpostk8s/outpost", "outpost"},
}

// ComponentOf names the component a source file belongs to.
func ComponentOf(file string) string {
	for _, o := range owners {
		if strings.Contains(file, o.part) {
			return o.comp
		}
	}
	return "k8s"
}

func kvString(kv []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		writeKV(&b, fmt.Sprint(kv[i]), kv[i+1])
	}
	if len(kv)%2 == 1 {
		writeKV(&b, "EXTRA", kv[len(kv)-1])
	}
	return b.String()
}
