// Package gpuhelper carries gpulib.Lib between the outpost process and the GPU helper
// (cmd/outpost-gpu), the small cgo binary that loads libnvidia-ml: the outpost binary is static
// and cannot dlopen the driver's library. JSON-RPC (net/rpc/jsonrpc) over the helper's stdin
// and stdout; the helper exits when its stdin closes.
package gpuhelper

import (
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// service is the RPC face of a gpulib.Lib; net/rpc wants methods of the form M(args, *reply).
type service struct{ lib gpulib.Lib }

// Empty is the argument of calls that take none.
type Empty struct{}

// EventReply is NextEvent's answer.
type EventReply struct {
	Event health.Event
	OK    bool
}

func (s *service) Detect(_ Empty, n *detect.Node) error {
	got, err := s.lib.Detect()
	if err == nil {
		*n = *got
	}
	return wire(err)
}

func (s *service) Preflight(_ Empty, p *gpulib.Preflight) error {
	got, err := s.lib.Preflight()
	if err == nil {
		*p = *got
	}
	return wire(err)
}

func (s *service) Open(_ Empty, _ *Empty) error  { return wire(s.lib.Open()) }
func (s *service) Close(_ Empty, _ *Empty) error { return wire(s.lib.Close()) }

func (s *service) Readings(_ Empty, rs *[]gpulib.Reading) error {
	got, err := s.lib.Readings()
	*rs = got
	return wire(err)
}

func (s *service) Probe(uuid string, ok *bool) error { *ok = s.lib.Probe(uuid); return nil }

func (s *service) NextEvent(timeout time.Duration, r *EventReply) error {
	var err error
	r.Event, r.OK, err = s.lib.NextEvent(timeout)
	return wire(err)
}

func (s *service) ApplyMIG(p mig.GPUPlan, r *mig.Result) error {
	var err error
	*r, err = s.lib.ApplyMIG(p)
	return wire(err)
}

func (s *service) CDISpec(o gpulib.CDIOptions, r *gpulib.CDISpec) error {
	got, err := s.lib.CDISpec(o)
	if err == nil {
		*r = *got
	}
	return wire(err)
}

func (s *service) Validate(ids []string, r *[]gpulib.Validation) error {
	got, err := s.lib.Validate(ids)
	*r = got
	return wire(err)
}

// Serve answers calls on conn until it closes.
func Serve(lib gpulib.Lib, conn io.ReadWriteCloser) error {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Lib", &service{lib: lib}); err != nil {
		return fmt.Errorf("register GPU service: %w", err)
	}
	srv.ServeCodec(jsonrpc.NewServerCodec(conn))
	return nil
}

// ServeStdio answers calls on the process's stdin and stdout until stdin closes: the helper's
// main.
func ServeStdio(lib gpulib.Lib) error { return Serve(lib, stdio{os.Stdin, os.Stdout}) }

type stdio struct {
	io.ReadCloser
	io.Writer
}

// sentinels cross the pipe as a text prefix and are restored on the other side, so callers
// keep using errors.Is.
func sentinels() []error { return []error{detect.ErrNoDriver, gpulib.ErrNoEvents} }

func wire(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range sentinels() {
		if errors.Is(err, s) && !strings.HasPrefix(err.Error(), s.Error()) {
			return fmt.Errorf("%s: %s", s.Error(), err.Error())
		}
	}
	return err
}

// unwire restores a sentinel from an error's text.
func unwire(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range sentinels() {
		if rest, ok := strings.CutPrefix(msg, s.Error()); ok {
			return fmt.Errorf("%w%s", s, rest)
		}
	}
	return errors.New(msg)
}
