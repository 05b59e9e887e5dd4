package mockgpu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
)

// The lean mock must answer every NVML call Outpost makes: detection, events, metrics.
func TestCoversOutpostsNVMLCalls(t *testing.T) {
	m := DGXA100()
	n, err := detect.Detect(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.GPUs) != 8 || len(n.GPUs[0].NVLinkPeers) != 7 || n.GPUs[5].PCIBusID != BusID(5) || !n.GPUs[0].MIGCapable {
		t.Errorf("node %+v", n.GPUs[0])
	}
	// Like the real library, nothing answers between Detect's Shutdown and the next Init.
	var b bytes.Buffer
	if err := (metrics.Source{Lib: m}).Write(&b); err == nil {
		t.Error("metrics read NVML before Init")
	}
	m.Init()
	defer m.Shutdown()
	b.Reset()
	if err := (metrics.Source{Lib: m, XIDs: func(string) uint64 { return 0 }}).Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, name := range metrics.All {
		if strings.Count(b.String(), name+"{") != 8 {
			t.Errorf("metric %s not served for 8 GPUs", name)
		}
	}
	w, err := health.WatchNVML(m)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "inject")
	os.WriteFile(f, []byte("xid 3 79\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.WatchInjectFile(ctx, f)
	e, ok, err := w.Next(5 * time.Second)
	if err != nil || !ok || e.XID != 79 || e.UUID != m.Devices[3].UUID {
		t.Errorf("injected event %+v ok=%v err=%v", e, ok, err)
	}
}
