// Package component defines the lifecycle every long-running part of Outpost follows and the
// Manager that starts them in ordered phases and stops them in reverse.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is one long-running part.
//
// Init prepares (files, config) and may fail; it leaves no goroutine behind. Start returns once
// the component runs. Stop is idempotent and safe in any phase, including after a failed Init.
type Component interface {
	Name() string
	Init(ctx context.Context) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Readier is implemented by components whose readiness can be probed from outside.
type Readier interface {
	Ready(ctx context.Context) error
}

// notGating runs a component without holding up the next stage on its readiness: only the
// Component methods show through, so the Manager sees no Readier.
type notGating struct{ Component }

// after starts its Component only once Dep is ready, within the Component's own Start (the
// After option). Dep must be a Readier; a Dep that dies first fails Start.
type after struct {
	Component
	Dep     Component
	Timeout time.Duration // default 2 minutes
}

func (a after) Start(ctx context.Context) error {
	if err := waitFor(ctx, a.Dep, a.Timeout, nil); err != nil {
		return fmt.Errorf("waiting for %s: %w", a.Dep.Name(), err)
	}
	return a.Component.Start(ctx)
}

// Dier is implemented by components that can die on their own; Done fires with the reason.
type Dier interface {
	Done() <-chan error
}

// Manager runs a Plan: every component of a stage is started, then the gating ones must be
// ready before the next stage starts. Once all run, it keeps probing readiness for Health.
type Manager struct {
	Plan         *Plan
	ReadyTimeout time.Duration
	Log          *slog.Logger
	// HealthEvery is how often readiness is probed once everything runs (default 15 s).
	HealthEvery time.Duration

	stages  []StageRun
	started []Component
	health  healthBook
}

// Start inits and starts every stage in order. On failure it stops what it started, in
// reverse, and returns the first error.
func (m *Manager) Start(ctx context.Context) error {
	stages, err := m.Plan.Stages()
	if err != nil {
		return err
	}
	m.stages = stages
	m.health.set(stages)
	for _, st := range stages {
		for _, c := range st.Components {
			if err := c.Init(ctx); err != nil {
				return m.unwind(ctx, fmt.Errorf("%s: init: %w", c.Name(), err))
			}
		}
		for _, c := range st.Components {
			m.started = append(m.started, c)
			if err := c.Start(ctx); err != nil {
				return m.unwind(ctx, fmt.Errorf("%s: start: %w", c.Name(), err))
			}
			m.health.mark(c.Name(), StateStarting, nil)
		}
		for _, c := range st.Components {
			if err := m.waitReady(ctx, c); err != nil {
				return m.unwind(ctx, err)
			}
			if _, gating := c.(Readier); gating {
				m.health.mark(c.Name(), StateReady, nil)
			}
		}
	}
	return nil
}

func (m *Manager) waitReady(ctx context.Context, c Component) error {
	return waitFor(ctx, c, m.ReadyTimeout, m.Log)
}

// readyPoll is how often readiness is probed: each phase waits on it, so a coarse one adds
// up at every start.
const readyPoll = 50 * time.Millisecond

// waitFor polls c's readiness (nil at once if c has none) until it is ready, dies, or the
// timeout (default 2 minutes) passes.
func waitFor(ctx context.Context, c Component, timeout time.Duration, log *slog.Logger) error {
	r, ok := c.(Readier)
	if !ok {
		return nil
	}
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var died <-chan error
	if d, ok := c.(Dier); ok {
		died = d.Done()
	}
	var last error
	for {
		if last = r.Ready(rctx); last == nil {
			if log != nil {
				log.Debug("ready", "component", c.Name())
			}
			return nil
		}
		select {
		case err := <-died:
			return fmt.Errorf("%s: exited before it was ready: %w", c.Name(), err)
		case <-rctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: not ready after %s: %w", c.Name(), timeout, last)
		case <-time.After(readyPoll):
		}
	}
}

func (m *Manager) unwind(ctx context.Context, cause error) error {
	if err := m.Stop(context.WithoutCancel(ctx)); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// Stop stops every started component in reverse order and joins their errors.
func (m *Manager) Stop(ctx context.Context) error {
	var errs []error
	for i := len(m.started) - 1; i >= 0; i-- {
		c := m.started[i]
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop: %w", c.Name(), err))
		}
	}
	m.started = nil
	return errors.Join(errs...)
}

// Died returns a channel that fires with the first component that dies on its own.
func (m *Manager) Died() <-chan error {
	out := make(chan error, 1)
	for _, st := range m.stages {
		for _, c := range st.Components {
			if d, ok := c.(Dier); ok {
				go func(name string, ch <-chan error) {
					if err, ok := <-ch; ok {
						select {
						case out <- fmt.Errorf("%s exited: %w", name, err):
						default:
						}
					}
				}(c.Name(), d.Done())
			}
		}
	}
	return out
}

// Run starts every stage, calls started (in its own goroutine) once all run, and blocks until
// ctx ends or a component dies; then it stops everything in reverse, giving the stop at most
// stopTimeout. It returns why a component died, or nil after ctx ended.
func (m *Manager) Run(ctx context.Context, stopTimeout time.Duration, started func(ctx context.Context)) error {
	if err := m.Start(ctx); err != nil {
		return err
	}
	if started != nil {
		go started(ctx)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	go m.watch(watchCtx)
	var runErr error
	select {
	case <-ctx.Done():
		m.Log.Info("stopping")
	case err := <-m.Died():
		runErr = err
		m.Log.Error("component died; stopping", "err", err)
	}
	stopWatch()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if err := m.Stop(stopCtx); err != nil {
		m.Log.Warn("stop", "err", err)
	}
	return runErr
}
