package component

import (
	"errors"
	"fmt"
	"slices"
)

// Stage names one step of a role's start. Every component of a stage is started, then the
// gating ones must be ready before the next stage starts.
type Stage string

// The stages the roles use, by what runs there. A role's plan lists those it has, in order.
const (
	StageDatastore   Stage = "datastore"   // kine or etcd, the Secrets key
	StageRuntime     Stage = "runtime"     // host settings, the CDI spec, the registry proxy, containerd
	StageAPI         Stage = "api"         // the apiserver with the join API
	StageImages      Stage = "images"      // the bundled and the user's image archives
	StageControllers Stage = "controllers" // scheduler, controller-manager, Outpost's own controllers
	StageKubelet     Stage = "kubelet"     // kubelet, kube-proxy, the service-CIDR guard
	StageNetwork     Stage = "network"     // flannel, CNI, network policy, the GPU layer
)

// Option is how a component joins its stage.
type Option func(*Entry)

// NotGating lets the next stage start without waiting for the component's readiness.
func NotGating() Option { return func(e *Entry) { e.NotGating = true } }

// After starts the component, within its own Start, only once dep is ready: work that
// needs a component of an earlier stage whose readiness that stage does not wait for.
func After(dep Component) Option { return func(e *Entry) { e.After = dep } }

// LeaderOnly runs the component only on the server holding the controllers' Lease, when the
// plan has an election (servers sharing a datastore); without one it runs as any other.
func LeaderOnly() Option { return func(e *Entry) { e.LeaderOnly = true } }

// Entry is one component in its stage, with how it joined.
type Entry struct {
	Component  Component
	NotGating  bool
	After      Component
	LeaderOnly bool
}

// Plan is what a role runs: its stages in start order, each with its components.
type Plan struct {
	// Elect, when set, wraps the leader-only components (in their order) into the one that
	// runs them while this server leads; it takes the place of the first of them.
	Elect func([]Component) Component

	order   []Stage
	entries map[Stage][]Entry
	err     error
}

// NewPlan is an empty plan with these stages, in this order.
func NewPlan(stages ...Stage) *Plan {
	return &Plan{order: stages, entries: map[Stage][]Entry{}}
}

// Add appends c to stage s. A stage the plan lacks, or a name used twice, is an error that
// Stages reports.
func (p *Plan) Add(s Stage, c Component, opts ...Option) {
	if !slices.Contains(p.order, s) {
		p.err = errors.Join(p.err, fmt.Errorf("component %s: the plan has no stage %q", c.Name(), s))
		return
	}
	if _, _, ok := p.Find(c.Name()); ok {
		p.err = errors.Join(p.err, fmt.Errorf("component %s added twice", c.Name()))
		return
	}
	e := Entry{Component: c}
	for _, o := range opts {
		o(&e)
	}
	p.entries[s] = append(p.entries[s], e)
}

// Order is the plan's stages in start order, empty ones too.
func (p *Plan) Order() []Stage { return slices.Clone(p.order) }

// Entries are stage s's components, as added.
func (p *Plan) Entries(s Stage) []Entry { return slices.Clone(p.entries[s]) }

// Names are stage s's component names, as added.
func (p *Plan) Names(s Stage) []string {
	var out []string
	for _, e := range p.entries[s] {
		out = append(out, e.Component.Name())
	}
	return out
}

// Find is the component named name, with its stage.
func (p *Plan) Find(name string) (Stage, Entry, bool) {
	for _, s := range p.order {
		for _, e := range p.entries[s] {
			if e.Component.Name() == name {
				return s, e, true
			}
		}
	}
	return "", Entry{}, false
}

// StageRun is one stage as the Manager runs it: the components wrapped by their options, the
// leader-elected group formed.
type StageRun struct {
	Stage      Stage
	Components []Component
}

// Stages resolves the plan for running: empty stages dropped, each component wrapped as its
// options say, the leader-only ones moved into Elect's group (they must share one stage).
func (p *Plan) Stages() ([]StageRun, error) {
	if p.err != nil {
		return nil, p.err
	}
	var out []StageRun
	var leaderStage Stage
	for _, s := range p.order {
		run := StageRun{Stage: s}
		var group []Component
		at := -1
		for _, e := range p.entries[s] {
			c := e.Component
			if e.After != nil {
				c = after{Component: c, Dep: e.After}
			}
			if e.NotGating {
				c = notGating{Component: c}
			}
			if e.LeaderOnly && p.Elect != nil {
				if leaderStage != "" && leaderStage != s {
					return nil, fmt.Errorf("leader-only components in stages %s and %s: the elected group runs in one", leaderStage, s)
				}
				leaderStage = s
				if at < 0 {
					at = len(run.Components)
				}
				group = append(group, c)
				continue
			}
			run.Components = append(run.Components, c)
		}
		if len(group) > 0 {
			run.Components = slices.Insert(run.Components, at, p.Elect(group))
		}
		if len(run.Components) > 0 {
			out = append(out, run)
		}
	}
	return out, nil
}

// Each calls f for every component of the plan, unwrapped, in start order.
func (p *Plan) Each(f func(Stage, Component)) {
	for _, s := range p.order {
		for _, e := range p.entries[s] {
			f(s, e.Component)
		}
	}
}

// Layout is the resolved plan by stage name: each stage's component names as they run (the
// elected group as one), for tests and `outpost status`.
func Layout(runs []StageRun) map[Stage][]string {
	out := map[Stage][]string{}
	for _, r := range runs {
		for _, c := range r.Components {
			out[r.Stage] = append(out[r.Stage], c.Name())
		}
	}
	return out
}

// Of is the plan's component of type T (unwrapped), the zero T when it has none: what a role
// built, for its tests and tools.
func Of[T Component](p *Plan) T {
	var out T
	p.Each(func(_ Stage, c Component) {
		if t, ok := c.(T); ok {
			out = t
		}
	})
	return out
}
