package layer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
	"github.com/outpostk8s/outpost/pkg/gpu/resources"
	migspec "github.com/outpostk8s/outpost/pkg/spec/mig"
)

type migRig struct {
	a       *Layer
	st      *status
	cs      *fake.Clientset
	machine *mockgpu.Machine
	cdiDir  string
	kubelet *gputest.FakeKubelet
	held    map[string][]podresources.Holder
}

// newMIGRig is an agent on the lean DGX A100 mock with MIG off, its plugins registered with a
// fake kubelet, and a fake API server holding its Node.
func newMIGRig(t *testing.T, cfg Config) *migRig { return newMIGRigOn(t, cfg, nil) }

// newMIGRigOn is newMIGRig with another library than the lean mock (nil: the lean mock).
func newMIGRigOn(t *testing.T, cfg Config, lib gpulib.Lib) *migRig {
	t.Helper()
	root := t.TempDir()
	for i := 0; i < 8; i++ {
		touch(t, filepath.Join(root, fmt.Sprintf("dev/nvidia%d", i)))
	}
	touch(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15"))
	r := &migRig{machine: mockgpu.DGXA100(), cdiDir: t.TempDir()}
	plugins := t.TempDir()
	r.kubelet = gputest.StartKubelet(t, plugins)
	r.cs = fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	n := 0
	r.cs.PrependReactor("create", "events", func(act k8stesting.Action) (bool, runtime.Object, error) {
		e := act.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		n++
		e.Name = fmt.Sprintf("%s%d", e.GenerateName, n)
		return false, nil, nil
	})
	cfg.NodeName, cfg.Replicas, cfg.PluginDir, cfg.CDIDir, cfg.DriverRoot, cfg.DevRoot = "n1", 1, plugins, r.cdiDir, root, root
	if lib == nil {
		lib = r.machine
	}
	plan, err := Check(cfg, lib)
	if err != nil {
		t.Fatal(err)
	}
	node, res := plan.Node, plan.Res
	r.a = &Layer{cfg: cfg, lib: lib, log: slog.New(slog.DiscardHandler), client: r.cs, Node: node, Res: res,
		podHolders: func(context.Context) (map[string][]podresources.Holder, error) { return r.held, nil }}
	r.a.mu.Lock()
	if err := r.a.startPlugins(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	r.a.mu.Unlock()
	t.Cleanup(func() { r.a.mu.Lock(); r.a.stopPlugins(); r.a.mu.Unlock() })
	r.st = &status{client: r.cs, node: "n1", log: r.a.log}
	return r
}

func touch(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *migRig) state() string { return r.a.labels()[mig.StateLabel] }

func (r *migRig) events(reason string) []string {
	ev, _ := r.cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	var out []string
	for _, e := range ev.Items {
		if e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

// validatedCondition is the Node's GPUValidated condition.
func (r *migRig) validatedCondition(t *testing.T) corev1.NodeCondition {
	return r.conditionOf(t, ValidatedCondition)
}

func (r *migRig) condition(t *testing.T) corev1.NodeCondition {
	return r.conditionOf(t, MIGConditionType)
}

// conditionOf is the Node's condition of that type; empty when it has none.
func (r *migRig) conditionOf(t *testing.T, typ corev1.NodeConditionType) corev1.NodeCondition {
	t.Helper()
	n, err := r.cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// Layout changes through the label: disabled to all-1g.5gb, to all-balanced, back to
// all-disabled; each advertised at once (plugins, labels, CDI spec) under the implied mixed
// strategy.
func TestMIGLayoutByLabel(t *testing.T) {
	r := newMIGRig(t, Config{})
	ctx := context.Background()
	if got := devices(r.a); got["nvidia.com/gpu"] != 8 || r.state() != "" {
		t.Fatalf("before: %v, state %q", got, r.state())
	}
	r.a.applyMIG(ctx, r.st, "all-1g.5gb")
	if got := devices(r.a); got["nvidia.com/mig-1g.5gb"] != 56 || len(got) != 1 {
		t.Fatalf("all-1g.5gb: %v", got)
	}
	l := r.a.labels()
	if l[mig.StateLabel] != mig.StateSuccess || l["nvidia.com/mig-1g.5gb.count"] != "56" || l["nvidia.com/mig.strategy"] != "mixed" {
		t.Fatalf("labels %v", l)
	}
	spec, _ := os.ReadFile(filepath.Join(r.cdiDir, "nvidia.yaml"))
	if !strings.Contains(string(spec), `name: "7:7"`) {
		t.Fatalf("the CDI spec does not name GPU 7's seventh MIG device:\n%s", spec)
	}
	if c := r.condition(t); c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "all-1g.5gb applied") {
		t.Fatalf("condition %+v", c)
	}
	if last := r.kubelet.Requests(); last[len(last)-1].ResourceName != "nvidia.com/mig-1g.5gb" {
		t.Fatalf("registrations %v", last)
	}

	r.a.applyMIG(ctx, r.st, "all-balanced")
	if got := devices(r.a); got["nvidia.com/mig-1g.5gb"] != 16 || got["nvidia.com/mig-2g.10gb"] != 8 || got["nvidia.com/mig-3g.20gb"] != 8 {
		t.Fatalf("all-balanced: %v", got)
	}
	r.a.applyMIG(ctx, r.st, "all-disabled")
	if got := devices(r.a); got["nvidia.com/gpu"] != 8 || len(got) != 1 {
		t.Fatalf("all-disabled: %v", got)
	}
	if len(r.events("MIGLayoutApplied")) != 3 {
		t.Fatalf("events %q", r.events("MIGLayoutApplied"))
	}
	r.a.applyMIG(ctx, r.st, "all-disabled") // nothing new: no second Event
	if len(r.events("MIGLayoutApplied")) != 3 {
		t.Fatalf("events after a repeat %q", r.events("MIGLayoutApplied"))
	}
}

// A GPU a pod holds is not changed: pending, until the pod is gone.
func TestMIGLayoutWaitsForPods(t *testing.T) {
	r := newMIGRig(t, Config{})
	ctx := context.Background()
	r.held = map[string][]podresources.Holder{mockgpu.UUID(3): {{Pod: "train", Namespace: "ml", Container: "c"}}}
	r.a.applyMIG(ctx, r.st, "all-7g.40gb")
	if r.state() != mig.StatePending || devices(r.a)["nvidia.com/gpu"] != 8 {
		t.Fatalf("state %q, devices %v", r.state(), devices(r.a))
	}
	if n, _ := r.machine.Detect(); n.GPUs[0].MIGEnabled || n.GPUs[3].MIGEnabled {
		t.Fatal("a GPU changed while a pod held one the layout changes")
	}
	if ev := r.events("MIGLayoutPending"); len(ev) != 1 || !strings.Contains(ev[0], "GPU 3 is held by pod ml/train") {
		t.Fatalf("pending events %q", ev)
	}
	r.a.applyMIG(ctx, r.st, "all-7g.40gb") // still held: no second Event
	if len(r.events("MIGLayoutPending")) != 1 {
		t.Fatal("pending reported twice")
	}
	r.held = nil
	r.a.applyMIG(ctx, r.st, "all-7g.40gb")
	if r.state() != mig.StateSuccess || devices(r.a)["nvidia.com/mig-7g.40gb"] != 8 {
		t.Fatalf("after the pod: state %q, devices %v", r.state(), devices(r.a))
	}
	// A pod holding a MIG device holds its GPU too; the metrics name it on that device.
	mid := "MIG-" + mockgpu.UUID(5) + "/1/0"
	if got := r.a.deviceGPUs()[mid]; got != mid {
		t.Fatalf("MIG device %s is named on %q in the metrics", mid, got)
	}
	r.held = map[string][]podresources.Holder{mid: {{Pod: "infer", Namespace: "ml", Container: "c"}}}
	r.a.applyMIG(ctx, r.st, "all-disabled")
	if ev := r.events("MIGLayoutPending"); r.state() != mig.StatePending || len(ev) != 2 || !strings.Contains(ev[1], "GPU 5 is held by pod ml/infer") {
		t.Fatalf("state %q, pending events %q", r.state(), ev)
	}
}

// Bad layouts fail with the GPUs as they were and an Event naming the cause; the config's
// layout applies when the node has no label.
func TestMIGLayoutFailures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "layouts.yaml")
	os.WriteFile(file, []byte("version: v1\nmig-configs:\n  two-halves:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"4g.20gb\": 1, \"3g.20gb\": 1}\n"), 0o644)
	layouts, err := migspec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	r := newMIGRig(t, Config{MIGConfig: "two-halves", MIGLayouts: layouts})
	ctx := context.Background()
	for _, c := range []struct{ label, want string }{
		{"all-9g.90gb", "does not offer MIG profile 9g.90gb"},
		{"nonsense", `unknown MIG layout "nonsense"`},
	} {
		r.a.applyMIG(ctx, r.st, c.label)
		if r.state() != mig.StateFailed {
			t.Fatalf("%s: state %q", c.label, r.state())
		}
		if ev := r.events("MIGLayoutFailed"); len(ev) == 0 || !strings.Contains(ev[len(ev)-1], c.want) {
			t.Fatalf("%s: events %q", c.label, ev)
		}
		if n, _ := r.machine.Detect(); n.GPUs[0].MIGEnabled {
			t.Fatalf("%s: GPU 0 changed", c.label)
		}
		if cond := r.condition(t); cond.Status != corev1.ConditionFalse || cond.Reason != "MIGLayoutFailed" {
			t.Fatalf("%s: condition %+v", c.label, cond)
		}
	}
	r.a.applyMIG(ctx, r.st, "") // no label: the config's layout
	if got := devices(r.a); r.state() != mig.StateSuccess || got["nvidia.com/mig-4g.20gb"] != 8 || got["nvidia.com/mig-3g.20gb"] != 8 {
		t.Fatalf("config layout: state %q, devices %v", r.state(), got)
	}
}

// A config naming a layout the GPUs cannot take stops the start, with one line.
func TestMIGConfigCheckedAtStart(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 8; i++ {
		touch(t, filepath.Join(root, fmt.Sprintf("dev/nvidia%d", i)))
	}
	touch(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15"))
	_, err := Check(Config{MIGConfig: "all-2g.20gb", Replicas: 1}, mockgpu.DGXA100())
	if err == nil || !strings.Contains(err.Error(), "--gpu-mig-config: MIG layout all-2g.20gb: GPU 0") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("more than one line: %v", err)
	}
	plan, err := Check(Config{MIGConfig: "all-disabled", Replicas: 1, DevRoot: root, DriverRoot: root}, mockgpu.DGXA100())
	res := planRes(plan)
	if err != nil || len(res) != 1 || res[0].Name != resources.GPUResource {
		t.Fatalf("all-disabled: %v %v", res, err)
	}
}

// failOn is the mock with one GPU whose MIG change the driver refuses.
type failOn struct {
	*mockgpu.Machine
	uuid string
}

func (f failOn) ApplyMIG(p mig.GPUPlan) (mig.Result, error) {
	if p.UUID == f.uuid {
		return mig.Result{}, fmt.Errorf("GPU %d: nvml set MIG mode: In use by another client", p.Index)
	}
	return f.Machine.ApplyMIG(p)
}

// A change that stops partway fails, and what did change is advertised: no plugin offers a
// whole GPU that is now in MIG mode.
func TestMIGLayoutPartialFailure(t *testing.T) {
	r := newMIGRig(t, Config{})
	r.a.lib = failOn{r.machine, mockgpu.UUID(3)}
	r.a.applyMIG(context.Background(), r.st, "all-7g.40gb")
	if r.state() != mig.StateFailed {
		t.Fatalf("state %q", r.state())
	}
	if ev := r.events("MIGLayoutFailed"); len(ev) != 1 || !strings.Contains(ev[0], "In use by another client") {
		t.Fatalf("events %q", ev)
	}
	if got := devices(r.a); got["nvidia.com/mig-7g.40gb"] != 3 || got["nvidia.com/gpu"] != 5 {
		t.Fatalf("after GPUs 0-2 changed and 3 refused: %v", got)
	}
}

// The same changes through nvmllib on go-nvml's DGX A100 server mock, which creates and
// destroys GPU and compute instances as NVML calls ask: disabled → all-1g.5gb → (a pod holds
// GPU 3: pending) → all-balanced → a profile the A100 lacks (failed, untouched) → all-disabled.
func TestMIGLayoutsOnGoNVMLMock(t *testing.T) {
	srv := dgxa100.New()
	gputest.FullMesh(srv)
	lib := nvmllib.New(srv)
	r := newMIGRigOn(t, Config{}, noCDI{lib})
	ctx := context.Background()
	r.a.applyMIG(ctx, r.st, "all-1g.5gb")
	if got := devices(r.a); r.state() != mig.StateSuccess || got["nvidia.com/mig-1g.5gb"] != 56 || len(got) != 1 {
		t.Fatalf("all-1g.5gb: state %q, devices %v", r.state(), got)
	}
	n, _ := lib.Detect()
	r.held = map[string][]podresources.Holder{n.GPUs[3].MIG[0].ID: {{Pod: "p", Namespace: "ns", Container: "c"}}}
	r.a.applyMIG(ctx, r.st, "all-balanced")
	if got := devices(r.a); r.state() != mig.StatePending || got["nvidia.com/mig-1g.5gb"] != 56 {
		t.Fatalf("held: state %q, devices %v", r.state(), got)
	}
	r.held = nil
	r.a.applyMIG(ctx, r.st, "all-balanced")
	if got := devices(r.a); r.state() != mig.StateSuccess || got["nvidia.com/mig-1g.5gb"] != 16 || got["nvidia.com/mig-2g.10gb"] != 8 || got["nvidia.com/mig-3g.20gb"] != 8 {
		t.Fatalf("all-balanced: state %q, devices %v", r.state(), got)
	}
	r.a.applyMIG(ctx, r.st, "all-4g.40gb")
	if got := devices(r.a); r.state() != mig.StateFailed || got["nvidia.com/mig-3g.20gb"] != 8 {
		t.Fatalf("all-4g.40gb: state %q, devices %v", r.state(), got)
	}
	if n, _ := lib.Detect(); len(n.GPUs[0].MIG) != 4 {
		t.Fatalf("a refused layout changed GPU 0: %+v", n.GPUs[0].MIG)
	}
	r.a.applyMIG(ctx, r.st, "all-disabled")
	if got := devices(r.a); r.state() != mig.StateSuccess || got["nvidia.com/gpu"] != 8 || len(got) != 1 {
		t.Fatalf("all-disabled: state %q, devices %v", r.state(), got)
	}
}

// noCDI answers CDISpec with an empty spec: go-nvml's model has no MIG device handles and no
// host has its /proc/driver/nvidia-caps, which NVIDIA's generator reads for MIG devices (the
// generator is tested in pkg/gpu/nvcdispec).
type noCDI struct{ gpulib.Lib }

func (noCDI) CDISpec(gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	return &gpulib.CDISpec{YAML: []byte("cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices: []\ncontainerEdits: {}\n")}, nil
}

func planRes(p *Plan) []resources.Resource {
	if p == nil {
		return nil
	}
	return p.Res
}
