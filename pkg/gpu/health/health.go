// Package health turns NVML events (read by pkg/gpu/nvmllib) into GPU health: a critical XID
// or a double-bit ECC error makes a GPU unhealthy; a GPU that answers NVML again and stays quiet
// for a while is healthy again, with no restart of anything.
package health

import (
	"fmt"
	"sync"
	"time"
)

// IgnoredXIDs are application-caused errors (bad memory access, kernel faults, preemption):
// the GPU itself is fine. The list matches NVIDIA's device plugin default.
var IgnoredXIDs = map[uint64]bool{13: true, 31: true, 43: true, 45: true, 68: true, 109: true}

// Event is one NVML event about one GPU.
type Event struct {
	UUID string
	Kind string // "xid" or "ecc-dbe"
	XID  uint64
}

// Critical reports whether the event makes the GPU unhealthy.
func (e Event) Critical() bool {
	switch e.Kind {
	case "ecc-dbe":
		return true
	case "xid":
		return !IgnoredXIDs[e.XID]
	}
	return false
}

// Reason is the human text for a node condition and an Event.
func (e Event) Reason() string {
	if e.Kind == "ecc-dbe" {
		return fmt.Sprintf("GPU %s: double-bit ECC error", e.UUID)
	}
	return fmt.Sprintf("GPU %s: XID %d", e.UUID, e.XID)
}

// Change is a health transition.
type Change struct {
	UUID    string
	Healthy bool
	Reason  string
}

// Monitor tracks health and XID counts per GPU.
type Monitor struct {
	// Probe asks NVML whether the GPU answers; nil treats every GPU as answering.
	Probe func(uuid string) bool
	// Quiet is how long an unhealthy GPU must see no critical event before a passing probe
	// makes it healthy again.
	Quiet time.Duration
	Now   func() time.Time

	mu       sync.Mutex
	bad      map[string]time.Time // uuid → last critical event
	reasons  map[string]string
	xids     map[string]uint64
	lastXID  map[string]uint64
	onChange func(Change)
}

// NewMonitor returns a monitor calling onChange at every transition.
func NewMonitor(probe func(string) bool, quiet time.Duration, onChange func(Change)) *Monitor {
	return &Monitor{Probe: probe, Quiet: quiet, Now: time.Now, bad: map[string]time.Time{},
		reasons: map[string]string{}, xids: map[string]uint64{}, lastXID: map[string]uint64{}, onChange: onChange}
}

// Handle applies one event.
func (m *Monitor) Handle(e Event) {
	m.mu.Lock()
	if e.Kind == "xid" {
		m.xids[e.UUID]++
		m.lastXID[e.UUID] = e.XID
	}
	if !e.Critical() {
		m.mu.Unlock()
		return
	}
	_, already := m.bad[e.UUID]
	m.bad[e.UUID] = m.Now()
	m.reasons[e.UUID] = e.Reason()
	m.mu.Unlock()
	if !already && m.onChange != nil {
		m.onChange(Change{UUID: e.UUID, Healthy: false, Reason: e.Reason()})
	}
}

// Fail marks a device unhealthy for a reason of the caller's (a failed validation): it comes
// back as a GPU after an XID does, once quiet and probed.
func (m *Monitor) Fail(id, reason string) {
	m.mu.Lock()
	_, already := m.bad[id]
	m.bad[id] = m.Now()
	m.reasons[id] = reason
	m.mu.Unlock()
	if !already && m.onChange != nil {
		m.onChange(Change{UUID: id, Healthy: false, Reason: reason})
	}
}

// Recheck re-probes every unhealthy device that has been quiet long enough. The probes run
// outside the lock (a probe may validate the GPU, seconds on real hardware); a device that saw
// a new critical event meanwhile stays unhealthy.
func (m *Monitor) Recheck() {
	m.mu.Lock()
	due := map[string]time.Time{}
	for id, last := range m.bad {
		if m.Now().Sub(last) >= m.Quiet {
			due[id] = last
		}
	}
	m.mu.Unlock()
	var back []string
	for id, last := range due {
		passed := m.Probe == nil || m.Probe(id)
		m.mu.Lock()
		switch cur, ok := m.bad[id]; {
		case !ok || !cur.Equal(last):
		case passed:
			back = append(back, id)
			delete(m.bad, id)
			delete(m.reasons, id)
		default:
			m.bad[id] = m.Now() // a failed probe waits another quiet spell: no check every second
		}
		m.mu.Unlock()
	}
	for _, id := range back {
		if m.onChange != nil {
			m.onChange(Change{UUID: id, Healthy: true, Reason: id + " answers and passes its checks again"})
		}
	}
}

// Unhealthy returns the unhealthy GPUs and why.
func (m *Monitor) Unhealthy() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.reasons))
	for k, v := range m.reasons {
		out[k] = v
	}
	return out
}

// XIDs is the number of XID events seen per GPU (for the metrics endpoint).
func (m *Monitor) XIDs(uuid string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.xids[uuid]
}

// LastXID is the last XID seen for the GPU since start (dcgm-exporter's DCGM_FI_DEV_XID_ERRORS);
// 0 when none.
func (m *Monitor) LastXID(uuid string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastXID[uuid]
}
