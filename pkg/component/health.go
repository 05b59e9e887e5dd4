package component

import (
	"context"
	"slices"
	"sync"
	"time"
)

// State is a component's health as the Manager last saw it.
type State string

const (
	StatePending  State = "pending"   // its stage has not started
	StateStarting State = "starting"  // started, not yet ready
	StateReady    State = "ready"     // its readiness probe answers
	StateNotReady State = "not-ready" // its probe failed twice in a row after it was ready
	StateRunning  State = "running"   // started; it has no probe
)

// Health is one component's line in `outpost status`.
type Health struct {
	Stage Stage     `json:"stage"`
	Name  string    `json:"name"`
	State State     `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
}

// healthBook is the Manager's record, read by Health from other goroutines.
type healthBook struct {
	mu    sync.Mutex
	lines []Health
	fails map[string]int
}

func (b *healthBook) set(stages []StageRun) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines, b.fails = nil, map[string]int{}
	now := time.Now()
	for _, st := range stages {
		for _, c := range st.Components {
			b.lines = append(b.lines, Health{Stage: st.Stage, Name: c.Name(), State: StatePending, Since: now})
		}
	}
}

// mark records a state; it returns the previous one.
func (b *healthBook) mark(name string, s State, err error) State {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.lines {
		h := &b.lines[i]
		if h.Name != name {
			continue
		}
		prev := h.State
		if prev != s {
			h.State, h.Since = s, time.Now()
		}
		h.Error = ""
		if err != nil {
			h.Error = err.Error()
		}
		return prev
	}
	return ""
}

// failed counts a failed probe; it returns the failures in a row.
func (b *healthBook) failed(name string, ok bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.fails[name] = 0
		return 0
	}
	b.fails[name]++
	return b.fails[name]
}

// Health is every component's state, in start order.
func (m *Manager) Health() []Health {
	m.health.mu.Lock()
	defer m.health.mu.Unlock()
	return slices.Clone(m.health.lines)
}

// unwrap is the component an option wrapped: the one whose readiness counts.
func unwrap(c Component) Component {
	for {
		switch w := c.(type) {
		case notGating:
			c = w.Component
		case after:
			c = w.Component
		default:
			return c
		}
	}
}

// probeTimeout bounds one readiness probe after the start.
const probeTimeout = 5 * time.Second

// watch probes every component's readiness until ctx ends. A component that stops answering
// is logged once, after two failures in a row (one slow answer on a busy machine is no news),
// and once more when it answers again.
func (m *Manager) watch(ctx context.Context) {
	every := m.HealthEvery
	if every == 0 {
		every = 15 * time.Second
	}
	m.probeAll(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.probeAll(ctx)
		}
	}
}

func (m *Manager) probeAll(ctx context.Context) {
	for _, st := range m.stages {
		for _, w := range st.Components {
			c := unwrap(w)
			r, ok := c.(Readier)
			if !ok {
				m.health.mark(c.Name(), StateRunning, nil)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := r.Ready(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			m.record(c.Name(), err)
		}
	}
}

func (m *Manager) record(name string, err error) {
	if err == nil {
		m.health.failed(name, true)
		if prev := m.health.mark(name, StateReady, nil); prev == StateNotReady && m.Log != nil {
			m.Log.Info("ready again", "component", name)
		}
		return
	}
	n := m.health.failed(name, false)
	prev := m.currentState(name)
	switch {
	case prev == StateStarting:
		m.health.mark(name, StateStarting, err) // not ready yet (a stage that does not wait for it)
	case n >= 2:
		if m.health.mark(name, StateNotReady, err) != StateNotReady && m.Log != nil {
			m.Log.Warn("not ready", "component", name, "err", err)
		}
	}
}

func (m *Manager) currentState(name string) State {
	m.health.mu.Lock()
	defer m.health.mu.Unlock()
	for _, h := range m.health.lines {
		if h.Name == name {
			return h.State
		}
	}
	return ""
}
