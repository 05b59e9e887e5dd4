package prestart

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

func ports(p Plan) []int {
	var out []int
	for _, pt := range p.Ports() {
		out = append(out, pt.Port)
	}
	return out
}

func TestPortsFollowTheRole(t *testing.T) {
	api := &API{BindAddress: "0.0.0.0", Port: 6443}
	for name, tc := range map[string]struct {
		plan Plan
		want []int
	}{
		"server":        {Plan{Node: true, API: api}, []int{10250, 10248, 10256, 6443, 10257, 10259}},
		"disable-agent": {Plan{API: api}, []int{6443, 10257, 10259}},
		"agent":         {Plan{Node: true, LB: true}, []int{10250, 10248, 10256, 6444}},
		"etcd":          {Plan{API: &API{BindAddress: "0.0.0.0", Port: 6443, Etcd: true}}, []int{6443, 10257, 10259, 2379, 2380}},
	} {
		if got := ports(tc.plan); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ports %v, want %v", name, got, tc.want)
		}
	}
}

func TestLockRefusesTakenPortAndSecondStart(t *testing.T) {
	dirs := datadir.Dirs{Data: filepath.Join(t.TempDir(), "data")}
	plan := Plan{Dirs: dirs, Node: true, LB: true}
	taken := func(addr string, port int) error {
		if port == 6444 {
			return errors.New("in use")
		}
		return nil
	}
	if _, err := plan.Lock(taken); err == nil || !strings.Contains(err.Error(), "port 6444 (agent load balancer)") {
		t.Fatalf("taken port: %v", err)
	}
	if _, err := os.Stat(dirs.Data); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused start created the data dir")
	}
	free := func(string, int) error { return nil }
	l, err := plan.Lock(free)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := plan.Lock(free); err == nil {
		t.Error("second start on the same data dir allowed")
	}
}

// A control plane alone starts where a node could not (no cpu cgroup controller); the GPU
// check runs only for a node.
func TestHostChecksFollowTheRole(t *testing.T) {
	root := t.TempDir()
	for p, body := range map[string]string{"/proc/filesystems": "nodev\toverlay\n", "/sys/fs/cgroup/memory/x": "", "/sys/fs/cgroup/pids/x": ""} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(body), 0o644)
	}
	h := hostcheck.Host{Root: root, LookPath: func(n string) (string, error) { return "/usr/sbin/" + n, nil },
		Statfs: func(string, *unix.Statfs_t) error { return nil }, Euid: func() int { return 0 }}
	gpuRan := false
	gpu := func() error { gpuRan = true; return nil }
	if err := (Plan{API: &API{}}).Host(h); err != nil {
		t.Errorf("control plane alone: %v", err)
	}
	if err := (Plan{Node: true, GPU: gpu}).Host(h); err == nil || !strings.Contains(err.Error(), "cgroup controller cpu") {
		t.Errorf("node without the cpu controller: %v", err)
	}
	os.WriteFile(filepath.Join(root, "/sys/fs/cgroup/cpu"), nil, 0o644)
	if err := (Plan{Node: true, GPU: gpu}).Host(h); err != nil || !gpuRan {
		t.Errorf("node: %v, GPU checked %v", err, gpuRan)
	}
}
