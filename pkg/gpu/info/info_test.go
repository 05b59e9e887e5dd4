package info

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gputest"
	"github.com/outpostk8s/outpost/pkg/gpu/nvmllib"
)

func TestTableAndJSON(t *testing.T) {
	m := dgxa100.New()
	gputest.FullMesh(m)
	gputest.PartitionMIG(t, m, 0, nvml.GPU_INSTANCE_PROFILE_1_SLICE, 2)
	n, err := nvmllib.Detect(m)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Table(&b, n); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"driver 550.54.15, CUDA 12.4, 8 GPU(s)", "INDEX", "enabled (2 devices)", "MIG 1g.5gb", "00000000:17:00.0", "40960 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 1+1+8+2 {
		t.Errorf("%d lines:\n%s", lines, out)
	}
	b.Reset()
	JSON(&b, n)
	var back detect.Node
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.GPUs) != 8 || back.GPUs[0].MIG[1].Profile != "1g.5gb" {
		t.Errorf("json round trip: %v", err)
	}
}
