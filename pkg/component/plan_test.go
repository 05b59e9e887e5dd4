package component

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// group stands for the leader-elected component: it records what it was given.
type group struct {
	fake
	members []Component
}

// The leader-only components move into one group, in their order, where the first of them
// stood; without an election they run in place. Unknown stages and names used twice fail.
func TestPlanLeaderGroupAndOptions(t *testing.T) {
	var log []string
	mk := func(n string) *fake { return &fake{name: n, log: &log} }
	p := NewPlan(StageDatastore, StageControllers)
	kine, sched, deploy, lb, claim := mk("kine"), mk("sched"), mk("deploy"), mk("servicelb"), mk("claim")
	p.Add(StageDatastore, kine)
	p.Add(StageControllers, sched)
	p.Add(StageControllers, deploy, LeaderOnly(), NotGating())
	p.Add(StageControllers, lb, LeaderOnly())
	p.Add(StageControllers, claim, After(kine))

	names := func(st []StageRun) (out []string) {
		for _, s := range st {
			for _, c := range s.Components {
				out = append(out, string(s.Stage)+"/"+c.Name())
			}
		}
		return out
	}
	st, err := p.Stages()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(st), []string{"datastore/kine", "controllers/sched", "controllers/deploy", "controllers/servicelb", "controllers/claim"}; !slices.Equal(got, want) {
		t.Errorf("without an election: %v, want %v", got, want)
	}
	var g *group
	p.Elect = func(cs []Component) Component {
		g = &group{fake: fake{name: "leader-elected", log: &log}, members: cs}
		return g
	}
	if st, err = p.Stages(); err != nil {
		t.Fatal(err)
	}
	if got, want := names(st), []string{"datastore/kine", "controllers/sched", "controllers/leader-elected", "controllers/claim"}; !slices.Equal(got, want) {
		t.Errorf("with an election: %v, want %v", got, want)
	}
	if len(g.members) != 2 || g.members[0].Name() != "deploy" || g.members[1].Name() != "servicelb" {
		t.Errorf("group %v", g.members)
	}
	if _, gating := g.members[0].(Readier); gating {
		t.Error("deploy added not gating is probed")
	}
	if a, ok := st[1].Components[2].(after); !ok || a.Dep != kine {
		t.Errorf("claim %#v, want it after kine", st[1].Components[2])
	}
	if s, e, ok := p.Find("deploy"); !ok || s != StageControllers || !e.LeaderOnly || !e.NotGating {
		t.Errorf("Find(deploy) = %v %+v %v", s, e, ok)
	}

	p.Add(StageNetwork, mk("flannel"))
	p.Add(StageDatastore, mk("kine"))
	if _, err := p.Stages(); err == nil || !strings.Contains(err.Error(), `no stage "network"`) || !strings.Contains(err.Error(), "kine added twice") {
		t.Errorf("bad plan: %v", err)
	}
}

// Leader-only components in two stages cannot form one group.
func TestPlanLeaderGroupInOneStage(t *testing.T) {
	var log []string
	p := NewPlan(StageAPI, StageControllers)
	p.Elect = func(cs []Component) Component { return &fake{name: "g", log: &log} }
	p.Add(StageAPI, &fake{name: "a", log: &log}, LeaderOnly())
	p.Add(StageControllers, &fake{name: "b", log: &log}, LeaderOnly())
	if _, err := p.Stages(); err == nil {
		t.Error("a group across two stages")
	}
}

// After the start the Manager keeps probing: a component that fails twice in a row is
// not-ready (with the error), and ready again once it answers.
func TestManagerHealth(t *testing.T) {
	var log []string
	a := &flaky{fake: fake{name: "a", log: &log}}
	b := &fake{name: "b", log: &log}
	p := NewPlan(StageDatastore, StageAPI)
	p.Add(StageDatastore, a)
	p.Add(StageAPI, b)
	m := &Manager{Plan: p}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	state := func() map[string]State {
		out := map[string]State{}
		for _, h := range m.Health() {
			out[h.Name] = h.State
		}
		return out
	}
	if s := state(); s["a"] != StateReady || s["b"] != StateReady {
		t.Fatalf("after start %v", s)
	}
	a.fail = true
	m.probeAll(context.Background())
	if s := state(); s["a"] != StateReady {
		t.Errorf("one failed probe: %v", s)
	}
	m.probeAll(context.Background())
	h := m.Health()[0]
	if h.State != StateNotReady || h.Error != "down" || h.Stage != StageDatastore {
		t.Errorf("two failed probes: %+v", h)
	}
	a.fail = false
	m.probeAll(context.Background())
	if s := state(); s["a"] != StateReady {
		t.Errorf("answering again: %v", s)
	}
	if time.Since(m.Health()[0].Since) > time.Minute {
		t.Error("since not updated")
	}
}

type flaky struct {
	fake
	fail bool
}

func (f *flaky) Ready(context.Context) error {
	if f.fail {
		return errString("down")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// Of finds a component by type, through the options that wrap it.
func TestOf(t *testing.T) {
	var log []string
	p := NewPlan(StageRuntime)
	f := &flaky{fake: fake{name: "a", log: &log}}
	p.Add(StageRuntime, &fake{name: "b", log: &log})
	p.Add(StageRuntime, f, NotGating())
	if got := Of[*flaky](p); got != f {
		t.Errorf("Of = %v, want the flaky one", got)
	}
	if got := Of[*group](p); got != nil {
		t.Errorf("Of of a type not added = %v", got)
	}
}
