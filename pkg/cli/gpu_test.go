package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
)

// `outpost gpu validate` lists every device with its result, and fails naming how many failed.
func TestGPUValidate(t *testing.T) {
	inject := filepath.Join(t.TempDir(), "inject")
	run := func() (string, error) {
		app := NewApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run([]string{"outpost", "gpu", "validate", "--gpu-mock", "dgxa100", "--gpu-mock-inject", inject})
		return out.String(), err
	}
	out, err := run()
	if err != nil || strings.Count(out, "passed") != 8 {
		t.Fatalf("all pass: %v\n%s", err, out)
	}
	os.WriteFile(inject, []byte("fail-validation 6\n"), 0o600)
	out, err = run()
	if err == nil || !strings.Contains(err.Error(), "1 of 8 GPU devices failed validation") {
		t.Errorf("one fails: %v", err)
	}
	if !strings.Contains(out, mockgpu.UUID(6)+"  FAILED") || !strings.Contains(out, "CUDA_ERROR_ECC_UNCORRECTABLE") || strings.Count(out, "passed") != 7 {
		t.Errorf("table:\n%s", out)
	}
}
