package images

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// ctr runs with Outpost's environment less OUTPOST_*: the join token must not reach it.
func TestExecDropsOutpostEnv(t *testing.T) {
	env, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env binary")
	}
	t.Setenv("OUTPOST_TOKEN", "K10secret::server:abc")
	t.Setenv("IMAGES_TEST_KEEP", "yes")
	out, err := Exec(context.Background(), nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "OUTPOST_TOKEN") {
		t.Errorf("OUTPOST_TOKEN reached the child:\n%s", out)
	}
	if !strings.Contains(string(out), "IMAGES_TEST_KEEP=yes") {
		t.Errorf("the rest of the environment is missing:\n%s", out)
	}
}
