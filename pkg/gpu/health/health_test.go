package health

import (
	"testing"
	"time"
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
	m.Recheck() // a failed probe waits another quiet spell before the next
	if len(changes) != 1 {
		t.Fatal("probed again before another quiet spell")
	}
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

// A device failed by its validation is unhealthy with that reason, and comes back once quiet
// and probed (validated) again.
func TestFail(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []Change
	pass := false
	m := NewMonitor(func(string) bool { return pass }, time.Minute, func(c Change) { changes = append(changes, c) })
	m.Now = func() time.Time { return now }
	m.Fail("MIG-GPU-1/2/0", "run the kernel: CUDA_ERROR_ECC_UNCORRECTABLE")
	m.Fail("MIG-GPU-1/2/0", "again")
	if len(changes) != 1 || changes[0].Healthy || m.Unhealthy()["MIG-GPU-1/2/0"] != "again" {
		t.Fatalf("changes %v, unhealthy %v", changes, m.Unhealthy())
	}
	now = now.Add(time.Minute)
	m.Recheck()
	pass = true
	now = now.Add(time.Minute)
	m.Recheck()
	if len(changes) != 2 || !changes[1].Healthy {
		t.Fatalf("changes %v", changes)
	}
}
