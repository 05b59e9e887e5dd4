package mockgpu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The mock answers like the real library: detection any time, live calls only while open,
// and events written to the inject file come out as the driver's would.
func TestLikeTheLibrary(t *testing.T) {
	m := DGXA100()
	n, err := m.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if len(n.GPUs) != 8 || len(n.GPUs[0].NVLinkPeers) != 7 || n.GPUs[5].PCIBusID != BusID(5) || !n.GPUs[0].MIGCapable {
		t.Errorf("node %+v", n.GPUs[0])
	}
	if _, err := m.Readings(); err == nil {
		t.Error("readings before Open")
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	rs, err := m.Readings()
	if err != nil || len(rs) != 8 || *rs[3].UtilPercent != 15 || rs[3].UUID != n.GPUs[3].UUID {
		t.Fatalf("readings %+v %v", rs, err)
	}
	if !m.Probe(n.GPUs[2].UUID) || m.Probe("GPU-nope") {
		t.Error("probe")
	}
	f := filepath.Join(t.TempDir(), "inject")
	os.WriteFile(f, []byte("xid 3 79\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.WatchInjectFile(ctx, f)
	e, ok, err := m.NextEvent(5 * time.Second)
	if err != nil || !ok || e.XID != 79 || e.UUID != UUID(3) {
		t.Errorf("injected event %+v ok=%v err=%v", e, ok, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err == nil {
		t.Error("second Close answered")
	}
}
