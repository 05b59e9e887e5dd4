// Package logging gives every log line the same shape, tagged with the component it came from:
//
//	2026-11-25T04:00:00.000Z [kubelet] INFO Started kubelet
//
// Outpost's own lines come through slog; the upstream Kubernetes components log through klog,
// which is routed here by a log format ("outpost") registered with component-base, so the
// kubelet and kube-proxy select it in their own config files.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// TimeFormat is every line's timestamp.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Out serializes whole lines to one writer.
type Out struct {
	mu sync.Mutex
	w  io.Writer
}

// NewOut wraps w.
func NewOut(w io.Writer) *Out { return &Out{w: w} }

// Line writes one tagged line.
func (o *Out) Line(component, level, msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%s [%s] %s %s\n", time.Now().UTC().Format(TimeFormat), component, level, msg)
}

// Write lets Out be an io.Writer for pre-formatted lines (child processes).
func (o *Out) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// Handler is a slog.Handler writing Out lines; the "component" attribute becomes the tag.
type Handler struct {
	out       *Out
	level     slog.Level
	component string
	attrs     string
}

// NewHandler returns a handler logging at level and above.
func NewHandler(out *Out, level slog.Level) *Handler {
	return &Handler{out: out, level: level, component: "outpost"}
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	comp := h.component
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" {
			comp = a.Value.String()
			return true
		}
		writeKV(&b, a.Key, a.Value.Any())
		return true
	})
	h.out.Line(comp, r.Level.String(), b.String())
	return nil
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		if a.Key == "component" {
			n.component = a.Value.String()
			continue
		}
		writeKV(&b, a.Key, a.Value.Any())
	}
	n.attrs = b.String()
	return &n
}

func (h *Handler) WithGroup(string) slog.Handler { return h }

func writeKV(b *strings.Builder, k string, v any) {
	s := fmt.Sprint(v)
	if err, ok := v.(error); ok {
		s = err.Error()
	}
	if strings.ContainsAny(s, " \t\n\"=") {
		s = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(b, " %s=%s", k, s)
}
