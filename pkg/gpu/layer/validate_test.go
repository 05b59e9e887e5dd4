package layer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// healthy counts the devices the plugins advertise healthy (what the kubelet makes allocatable).
func healthy(a *Layer) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, p := range a.plugins {
		n += p.Healthy()
	}
	return n
}

// A GPU whose check fails stays out of allocatable with its reason, the label and condition say
// so; once it passes again (probed after the quiet spell) it comes back. GPU 2 is untouched.
func TestValidationKeepsFailedGPUsOut(t *testing.T) {
	ctx := context.Background()
	r := newMIGRig(t, Config{})
	inject := filepath.Join(t.TempDir(), "inject")
	os.WriteFile(inject, []byte("fail-validation 3\n"), 0o600)
	r.machine.InjectFile = inject
	r.machine.Open() // as Start does: the probe asks NVML too
	defer r.machine.Close()
	now := time.Now()
	r.a.st = r.st
	r.a.monitor = health.NewMonitor(r.a.probe(ctx), time.Minute, func(c health.Change) {
		r.a.setHealth(c)
		r.st.report(ctx, c, r.a.monitor.Unhealthy(), false)
	})
	r.a.monitor.Now = func() time.Time { return now }
	vs := r.a.validate(ctx, DeviceIDs(r.a.Node))
	if len(vs) != 8 || vs[3].OK || !vs[2].OK {
		t.Fatalf("results %+v", vs)
	}
	if n := healthy(r.a); n != 7 {
		t.Errorf("%d healthy devices, want 7", n)
	}
	if l := r.a.labels()[ValidationLabel]; l != "failed" {
		t.Errorf("label %q", l)
	}
	cond := r.condition(t)
	if why := r.a.monitor.Unhealthy()[mockgpu.UUID(3)]; !strings.Contains(why, "failed validation: run the kernel: CUDA_ERROR_ECC_UNCORRECTABLE") {
		t.Errorf("reason %q (condition %+v)", why, cond)
	}
	r.a.flushValidation(ctx) // the label loop's turn
	got := r.validatedCondition(t)
	if got.Status != "False" || !strings.Contains(got.Message, mockgpu.UUID(3)) || strings.Contains(got.Message, mockgpu.UUID(2)) {
		t.Errorf("GPUValidated %+v", got)
	}
	// Still failing when probed: stays out. Passing: back, and the condition is True.
	now = now.Add(2 * time.Minute)
	r.a.monitor.Recheck()
	if n := healthy(r.a); n != 7 {
		t.Errorf("back while it still fails: %d healthy", n)
	}
	os.WriteFile(inject, []byte("fail-validation 3\npass-validation 3\n"), 0o600)
	now = now.Add(2 * time.Minute)
	r.a.monitor.Recheck()
	r.a.flushValidation(ctx)
	if n := healthy(r.a); n != 8 || r.a.labels()[ValidationLabel] != "passed" || r.validatedCondition(t).Status != "True" {
		t.Errorf("after passing again: %d healthy, label %q, condition %+v", n, r.a.labels()[ValidationLabel], r.validatedCondition(t))
	}
}

// The check cannot run at all (no checker, a helper that died): no device is handed out.
func TestValidationThatCannotRunFailsEveryDevice(t *testing.T) {
	ctx := context.Background()
	r := newMIGRig(t, Config{})
	r.a.lib = noValidation{r.machine}
	r.a.monitor = health.NewMonitor(nil, time.Minute, func(c health.Change) { r.a.setHealth(c) })
	r.a.validate(ctx, DeviceIDs(r.a.Node))
	if n := healthy(r.a); n != 0 {
		t.Errorf("%d devices handed out unchecked", n)
	}
}

type noValidation struct{ *mockgpu.Machine }

func (noValidation) Validate([]string) ([]gpulib.Validation, error) {
	return nil, errors.New("GPU validation: no checker in this helper")
}
