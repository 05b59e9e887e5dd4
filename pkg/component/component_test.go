package component

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fake struct {
	name              string
	log               *[]string
	initErr, startErr error
	readyAfter        int
	readyCalls        int
	done              chan error
}

func (f *fake) Name() string { return f.name }
func (f *fake) Init(context.Context) error {
	*f.log = append(*f.log, "init "+f.name)
	return f.initErr
}
func (f *fake) Start(context.Context) error {
	*f.log = append(*f.log, "start "+f.name)
	return f.startErr
}
func (f *fake) Stop(context.Context) error {
	*f.log = append(*f.log, "stop "+f.name)
	return nil
}
func (f *fake) Ready(context.Context) error {
	f.readyCalls++
	if f.readyCalls > f.readyAfter {
		return nil
	}
	return errors.New("not yet")
}
func (f *fake) Done() <-chan error { return f.done }

func TestManagerOrderAndReverseStop(t *testing.T) {
	var log []string
	a := &fake{name: "a", log: &log, readyAfter: 2}
	b := &fake{name: "b", log: &log}
	c := &fake{name: "c", log: &log}
	m := &Manager{Plan: plan(t, []Component{a}, []Component{b, c})}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.readyCalls != 3 {
		t.Errorf("a probed %d times, want 3", a.readyCalls)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"init a", "start a", "init b", "init c", "start b", "start c", "stop c", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v\nwant %v", log, want)
	}
}

func TestManagerUnwindsOnFailure(t *testing.T) {
	var log []string
	a := &fake{name: "a", log: &log}
	b := &fake{name: "b", log: &log, startErr: errors.New("boom")}
	m := &Manager{Plan: plan(t, []Component{a}, []Component{b})}
	err := m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "b: start: boom") {
		t.Fatalf("err = %v", err)
	}
	want := []string{"init a", "start a", "init b", "start b", "stop b", "stop a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v\nwant %v", log, want)
	}
}

func TestManagerDeathBeforeReady(t *testing.T) {
	var log []string
	done := make(chan error, 1)
	a := &fake{name: "a", log: &log, readyAfter: 1 << 30, done: done}
	done <- errors.New("exit status 1")
	m := &Manager{Plan: plan(t, []Component{a}), ReadyTimeout: 5 * time.Second}
	err := m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err = %v", err)
	}
}

// After starts its component only once the dependency is ready, and fails when the
// dependency dies first: the stage around it is not held up by the dependency.
func TestAfterWaitsForItsDependency(t *testing.T) {
	var log []string
	dep := &fake{name: "runtime", log: &log, readyAfter: 2}
	imgs := &fake{name: "images", log: &log}
	p := NewPlan(StageRuntime, StageImages)
	p.Add(StageRuntime, dep, NotGating())
	p.Add(StageImages, imgs, After(dep))
	m := &Manager{Plan: p}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dep.readyCalls != 3 {
		t.Errorf("dependency probed %d times, want 3", dep.readyCalls)
	}
	want := []string{"init runtime", "start runtime", "init images", "start images"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v\nwant %v", log, want)
	}

	died := &fake{name: "runtime", log: &log, readyAfter: 1 << 30, done: make(chan error, 1)}
	died.done <- errors.New("exit status 1")
	err := after{Component: imgs, Dep: died}.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "waiting for runtime") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("got %v, want the dependency's death", err)
	}
}

// A NotGating component is started but never probed: the next stage goes on at once.
func TestNotGatingDoesNotHoldUpThePhase(t *testing.T) {
	var log []string
	slow := &fake{name: "slow", log: &log, readyAfter: 1 << 30}
	next := &fake{name: "next", log: &log}
	p := NewPlan(StageRuntime, StageImages)
	p.Add(StageRuntime, slow, NotGating())
	p.Add(StageImages, next)
	m := &Manager{Plan: p}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if slow.readyCalls != 0 || (notGating{Component: slow}).Name() != "slow" {
		t.Errorf("probed %d times", slow.readyCalls)
	}
	m.Stop(context.Background())
	want := []string{"init slow", "start slow", "init next", "start next", "stop next", "stop slow"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got %v\nwant %v", log, want)
	}
}

func TestGetOK(t *testing.T) {
	code := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
	defer srv.Close()
	if err := GetOK(context.Background(), srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503 gave %v", err)
	}
	code = http.StatusOK
	if err := GetOK(context.Background(), srv.Client(), srv.URL); err != nil {
		t.Errorf("200 gave %v", err)
	}
}

// plan puts each list of components in a stage of its own, in order.
func plan(t *testing.T, stages ...[]Component) *Plan {
	t.Helper()
	all := []Stage{StageDatastore, StageRuntime, StageAPI, StageImages}
	p := NewPlan(all[:len(stages)]...)
	for i, cs := range stages {
		for _, c := range cs {
			p.Add(all[i], c)
		}
	}
	return p
}
