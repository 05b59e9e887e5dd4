package gpuhelper

import (
	"errors"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// noDriver is a Lib whose library does not load, wrapped as nvmllib wraps it.
type noDriver struct{ *mockgpu.Machine }

func (noDriver) Detect() (*detect.Node, error) {
	return nil, errors.Join(detect.ErrNoDriver, errors.New("ERROR_LIBRARY_NOT_FOUND"))
}

// served returns a proc talking to lib over an in-memory connection.
func served(t *testing.T, lib gpulib.Lib) *proc {
	a, b := net.Pipe()
	go Serve(lib, a)
	c := rpc.NewClientWithCodec(jsonrpc.NewClientCodec(b))
	t.Cleanup(func() { c.Close() })
	return &proc{rpc: c}
}

// Every call crosses the wire with its data, and the no-driver sentinel survives it.
func TestOverTheWire(t *testing.T) {
	m := mockgpu.DGXA100()
	p := served(t, m)
	var n detect.Node
	if err := p.call("Detect", Empty{}, &n, time.Second); err != nil {
		t.Fatal(err)
	}
	want, _ := m.Detect()
	if len(n.GPUs) != 8 || n.GPUs[4].UUID != want.GPUs[4].UUID || len(n.GPUs[4].NVLinkPeers) != 7 || n.DriverVersion != want.DriverVersion {
		t.Errorf("node %+v", n)
	}
	var rs []gpulib.Reading
	if err := p.call("Readings", Empty{}, &rs, time.Second); err == nil {
		t.Error("readings before Open")
	}
	if err := p.call("Open", Empty{}, &Empty{}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.call("Readings", Empty{}, &rs, time.Second); err != nil || len(rs) != 8 || *rs[2].UtilPercent != 10 {
		t.Errorf("readings %+v %v", rs, err)
	}
	var ok bool
	if err := p.call("Probe", mockgpu.UUID(1), &ok, time.Second); err != nil || !ok {
		t.Errorf("probe %v %v", ok, err)
	}
	m.InjectXID(5, 48)
	var ev EventReply
	if err := p.call("NextEvent", time.Second, &ev, 5*time.Second); err != nil || !ev.OK || ev.Event.XID != 48 || ev.Event.UUID != mockgpu.UUID(5) {
		t.Errorf("event %+v %v", ev, err)
	}
	if err := p.call("NextEvent", time.Millisecond, &ev, time.Second); err != nil || ev.OK {
		t.Errorf("timeout %+v %v", ev, err)
	}

	err := served(t, noDriver{m}).call("Detect", Empty{}, &n, time.Second)
	if !errors.Is(err, detect.ErrNoDriver) || !strings.Contains(err.Error(), "ERROR_LIBRARY_NOT_FOUND") {
		t.Errorf("err = %v, want ErrNoDriver with the cause", err)
	}
}

// A helper that is missing or dies is an error naming it, never a hang.
func TestHelperGone(t *testing.T) {
	c := &Client{Path: filepath.Join(t.TempDir(), "none")}
	if _, err := c.Detect(); err == nil || !strings.Contains(err.Error(), "start the GPU helper") {
		t.Errorf("missing helper: %v", err)
	}
	if os.Getenv("PATH") == "" {
		t.Skip("no PATH")
	}
	c = &Client{Path: "/bin/true"}
	if _, err := c.Detect(); !errors.Is(err, gpulib.ErrGone) || !strings.Contains(err.Error(), "GPU helper Detect") {
		t.Errorf("helper exits at once: %v", err)
	}
	if _, err := c.Readings(); err == nil {
		t.Error("readings without Open")
	}
}

// TestMain: called with "serve-mock" the test binary is a helper serving the mock; with
// "hang" one that never answers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-mock":
			if err := ServeStdio(mockgpu.DGXA100()); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		case "hang":
			time.Sleep(time.Hour)
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// A live helper that dies is replaced at the next call; one that hangs is killed at the
// deadline, and the call says so.
func TestHelperDiesOrHangs(t *testing.T) {
	self, _ := os.Executable()
	c := &Client{Path: self, Args: []string{"serve-mock"}}
	if n, err := c.Detect(); err != nil || len(n.GPUs) != 8 {
		t.Fatalf("detect through a helper process: %v", err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	first := c.live.cmd.Process
	first.Kill()
	<-c.live.done
	if _, err := c.Readings(); !errors.Is(err, gpulib.ErrGone) {
		t.Errorf("call to the dead helper: %v, want ErrGone", err)
	}
	if rs, err := c.Readings(); err != nil || len(rs) != 8 {
		t.Errorf("after the restart: %v %v", rs, err)
	}
	if c.live == nil || c.live.cmd.Process.Pid == first.Pid {
		t.Error("no new helper")
	}
	live := c.live
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-live.done:
	case <-time.After(5 * time.Second):
		t.Error("helper still running after Close")
	}

	h := &Client{Path: self, Args: []string{"hang"}, Timeout: 300 * time.Millisecond}
	start := time.Now()
	if _, err := h.Detect(); !errors.Is(err, gpulib.ErrGone) || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("hung helper: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("hung helper held the call %s", took)
	}
}

// A MIG plan crosses the wire and the mock keeps the layout in its state file, which a later
// helper process reads.
func TestApplyMIGOverTheWire(t *testing.T) {
	state := filepath.Join(t.TempDir(), "mig.json")
	m := mockgpu.DGXA100()
	m.StateFile = state
	p := served(t, m)
	plan := mig.GPUPlan{Index: 2, UUID: mockgpu.UUID(2), Enabled: true,
		Instances: []mig.Instance{{Profile: "7g.40gb", ProfileID: 4, Placement: detect.Placement{Start: 0, Size: 8}}}}
	var r mig.Result
	if err := p.call("ApplyMIG", plan, &r, time.Second); err != nil {
		t.Fatal(err)
	}
	later := mockgpu.DGXA100()
	later.StateFile = state
	n, err := later.Detect()
	if err != nil || !n.GPUs[2].MIGEnabled || len(n.GPUs[2].MIG) != 1 || n.GPUs[2].MIG[0].Profile != "7g.40gb" || n.GPUs[1].MIGEnabled {
		t.Fatalf("after: %+v %v", n.GPUs[2], err)
	}
	plan.Instances = append(plan.Instances, mig.Instance{Profile: "1g.5gb", ProfileID: 0, Placement: detect.Placement{Start: 0, Size: 1}})
	if err := p.call("ApplyMIG", plan, &r, time.Second); err == nil || !strings.Contains(err.Error(), "Insufficient Resources") {
		t.Fatalf("overlapping plan: %v", err)
	}
}
