package health

import (
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	mockserver "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

func TestTransitionsBothWays(t *testing.T) {
	now := time.Unix(1000, 0)
	answers := map[string]bool{"GPU-1": false}
	var changes []Change
	m := NewMonitor(func(u string) bool { return answers[u] }, time.Minute, func(c Change) { changes = append(changes, c) })
	m.Now = func() time.Time { return now }

	m.Handle(Event{UUID: "GPU-1", Kind: "xid", XID: 13}) // application error: ignored
	if len(changes) != 0 || m.XIDs("GPU-1") != 1 {
		t.Fatalf("XID 13 changed health: %v", changes)
	}
	m.Handle(Event{UUID: "GPU-1", Kind: "xid", XID: 79}) // fallen off the bus
	if len(changes) != 1 || changes[0].Healthy || changes[0].Reason != "GPU GPU-1: XID 79" {
		t.Fatalf("changes %v", changes)
	}
	m.Handle(Event{UUID: "GPU-1", Kind: "xid", XID: 79})
	if len(changes) != 1 {
		t.Error("a second event reported a second transition")
	}
	if m.Unhealthy()["GPU-1"] == "" {
		t.Error("not listed unhealthy")
	}
	now = now.Add(2 * time.Minute)
	m.Recheck() // quiet long enough, but the GPU does not answer yet
	if len(changes) != 1 {
		t.Fatal("recovered while the probe fails")
	}
	answers["GPU-1"] = true
	now = now.Add(30 * time.Second)
	m.Recheck()
	if len(changes) != 2 || !changes[1].Healthy || len(m.Unhealthy()) != 0 {
		t.Fatalf("no recovery: %v", changes)
	}
	m.Handle(Event{UUID: "GPU-1", Kind: "ecc-dbe"})
	if len(changes) != 3 || changes[2].Healthy {
		t.Errorf("double-bit ECC not critical: %v", changes)
	}
}

func TestQuietPeriod(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []Change
	m := NewMonitor(nil, time.Minute, func(c Change) { changes = append(changes, c) })
	m.Now = func() time.Time { return now }
	m.Handle(Event{UUID: "G", Kind: "xid", XID: 48})
	now = now.Add(30 * time.Second)
	m.Recheck()
	if len(changes) != 1 {
		t.Error("recovered before the quiet period")
	}
}

// fakeEventSet replays events through go-nvml's EventSet mock.
func TestNVMLEvents(t *testing.T) {
	srv := dgxa100.New()
	var queue []nvml.EventData
	set := &mock.EventSet{WaitFunc: func(uint32) (nvml.EventData, nvml.Return) {
		if len(queue) == 0 {
			return nvml.EventData{}, nvml.ERROR_TIMEOUT
		}
		e := queue[0]
		queue = queue[1:]
		return e, nvml.SUCCESS
	}}
	srv.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return set, nvml.SUCCESS }
	registered := 0
	for _, d := range srv.Devices {
		d.(*mockserver.Device).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { registered++; return nvml.SUCCESS }
	}
	w, err := WatchNVML(srv)
	if err != nil {
		t.Fatal(err)
	}
	if registered != 8 {
		t.Errorf("registered on %d GPUs", registered)
	}
	dev := srv.Devices[2]
	uuid, _ := dev.GetUUID()
	queue = append(queue, nvml.EventData{Device: dev, EventType: nvml.EventTypeXidCriticalError, EventData: 79},
		nvml.EventData{Device: dev, EventType: nvml.EventTypeDoubleBitEccError})
	e, ok, err := w.Next(time.Second)
	if err != nil || !ok || e.UUID != uuid || e.Kind != "xid" || e.XID != 79 {
		t.Errorf("first event %+v %v %v", e, ok, err)
	}
	e, _, _ = w.Next(time.Second)
	if e.Kind != "ecc-dbe" {
		t.Errorf("second event %+v", e)
	}
	if _, ok, err := w.Next(time.Millisecond); ok || err != nil {
		t.Errorf("timeout: ok=%v err=%v", ok, err)
	}
}
