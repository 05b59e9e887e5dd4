package server

import (
	"os"
	"testing"

	"github.com/outpostk8s/outpost/pkg/config"
)

// A check that fails after the restore's check stops the start with its error, and writes
// nothing (a start refused by a host check once ended in a nil dereference instead).
func TestCheckRefusesCleanly(t *testing.T) {
	o := defaultsFor(t)
	o.GPU.Mode, o.GPU.DefaultRuntime = "auto", "nvidia" // no NVIDIA runtime on this host
	cfg, err := config.CompleteServer(o, env())
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Check(cfg, env().Host)
	if err == nil || ck != nil {
		t.Fatalf("Check = %v, %v; want a refusal", ck, err)
	}
	if _, err := os.Stat(cfg.Control.Dirs.Data); !os.IsNotExist(err) {
		t.Error("a refused check wrote the data dir")
	}
}
