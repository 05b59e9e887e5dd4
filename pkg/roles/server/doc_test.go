package server

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/gpuhelper"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/roles/agent"
)

// docFile is the reader's map of the roles and their stages.
const docFile = "../../../docs/architecture.md"

// stageHeading starts a stage's section in docFile; the section runs to the next heading.
const stageHeading = "### Stage: "

// TestArchitectureDoc keeps docs/architecture.md up with the code: every component a server or
// an agent can run is named, as `name`, in the section of the stage it runs in, and the stage
// sections follow every role's start order. Assembled: a server with everything on (the GPU
// mock, Secrets encryption, a registry mirror that rewrites), one on embedded etcd (its
// leader-elected group), one with NetworkPolicies off, and an agent.
func TestArchitectureDoc(t *testing.T) {
	raw, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	sections, docOrder := stageSections(string(raw))

	want := map[component.Stage]map[string]bool{}
	name := func(s component.Stage, n string) {
		if want[s] == nil {
			want[s] = map[string]bool{}
		}
		want[s][n] = true
	}
	var plans []*component.Plan
	add := func(p *component.Plan) {
		plans = append(plans, p)
		p.Each(func(s component.Stage, c component.Component) { name(s, c.Name()) })
		for s, ns := range layout(t, p) { // as run: the elected group is a component too
			for _, n := range ns {
				name(s, n)
			}
		}
	}
	bin, gpu := mockGPU(t)
	reg := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(reg, []byte("mirrors:\n  docker.io:\n    endpoint: [\"https://mirror.example:5000\"]\n"+
		"    rewrite:\n      \"^library/(.*)\": \"mirror/$1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full, plan := assembleIn(t, bin, func(o *config.ServerOptions) {
		gpu(o)
		o.SecretsEncryption = true
		o.PrivateRegistry, o.RegistryGiven = reg, true
	})
	add(plan)
	_, plan = assemble(t, func(o *config.ServerOptions) { o.ClusterInit = true })
	add(plan)
	_, plan = assemble(t, func(o *config.ServerOptions) { o.DisableNetPol = true })
	add(plan)
	add(agentPlan(t, full))

	for _, s := range slices.Sorted(maps.Keys(want)) {
		sec, ok := sections[s]
		if !ok {
			t.Errorf("%s: no section %q for stage %s (components %v)", docFile, stageHeading+string(s), s, slices.Sorted(maps.Keys(want[s])))
			continue
		}
		for _, n := range slices.Sorted(maps.Keys(want[s])) {
			if !strings.Contains(sec, "`"+n+"`") {
				t.Errorf("%s: section %q does not name `%s`, which runs in that stage", docFile, stageHeading+string(s), n)
			}
		}
	}
	for _, s := range docOrder {
		if want[s] == nil {
			t.Errorf("%s: section %q is for a stage no role runs", docFile, stageHeading+string(s))
		}
	}
	for _, p := range plans {
		at := -1
		for _, s := range p.Order() {
			i := slices.Index(docOrder, s)
			if i < 0 {
				continue // reported above, if it has components
			}
			if i < at {
				t.Errorf("%s: the stage sections %v are not in the start order %v", docFile, docOrder, p.Order())
				break
			}
			at = i
		}
	}
}

// stageSections cuts doc into its stage sections, by stage, with the stages in doc order.
func stageSections(doc string) (map[component.Stage]string, []component.Stage) {
	text := map[component.Stage]*strings.Builder{}
	var order []component.Stage
	var cur *strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") {
			cur = nil
			if s, ok := strings.CutPrefix(line, stageHeading); ok {
				st := component.Stage(strings.TrimSpace(s))
				order = append(order, st)
				cur = &strings.Builder{}
				text[st] = cur
			}
			continue
		}
		if cur != nil {
			cur.WriteString(line + "\n")
		}
	}
	out := map[component.Stage]string{}
	for s, b := range text {
		out[s] = b.String()
	}
	return out, order
}

// mockGPU is the payload's bin dir with this test binary as the GPU helper (it serves the
// mock DGX A100: TestMain) and the options that put the mock on the node.
func mockGPU(t *testing.T) (string, func(*config.ServerOptions)) {
	t.Helper()
	dev := t.TempDir() // the mock's device nodes: plain files do, they are only looked for
	os.MkdirAll(filepath.Join(dev, "dev"), 0o755)
	for _, n := range []string{"nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidia4", "nvidia5", "nvidia6", "nvidia7"} {
		os.WriteFile(filepath.Join(dev, "dev", n), nil, 0o644)
	}
	drv := t.TempDir()
	lib := filepath.Join(drv, "usr/lib/x86_64-linux-gnu")
	os.MkdirAll(lib, 0o755)
	os.WriteFile(filepath.Join(lib, "libnvidia-ml.so.550.54.15"), nil, 0o644)
	bin := t.TempDir()
	self, _ := os.Executable()
	if err := os.Symlink(self, filepath.Join(bin, gpuhelper.BinaryName)); err != nil {
		t.Fatal(err)
	}
	cdi := filepath.Join(t.TempDir(), "cdi")
	return bin, func(o *config.ServerOptions) {
		o.GPU.Mode, o.GPU.Mock, o.GPU.DevRoot, o.GPU.DriverRoot, o.GPU.CDIDir = "auto", "dgxa100", dev, drv, cdi
	}
}

// agentPlan assembles an agent that joined the server s (a stored join: no server answers).
func agentPlan(t *testing.T, s *Server) *component.Plan {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.CompleteAgent(config.AgentOptions{NodeOptions: config.NodeOptions{DataDir: filepath.Join(dir, "data"),
		RuntimeDir: filepath.Join(dir, "run"), NodeIP: "127.0.0.1", NodePasswordFile: filepath.Join(dir, "pw"),
		GPU: config.GPUOptions{Mode: "off", MIGStrategy: "none", Replicas: 1}},
		Servers: []string{"https://10.0.0.1:6443"}, Token: "OP10" + strings.Repeat("0", 64) + "::abcdef.0123456789abcdef"}, env())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.Cluster = s.Cfg.Control.Cluster
	// The join's credentials: the server's own node's will do.
	tls := cfg.Node.Dirs.AgentTLS()
	os.MkdirAll(tls, 0o700)
	for _, f := range []string{pki.ServerCA + ".crt", pki.ClientCA + ".crt", pki.Kubelet + ".crt", pki.Kubelet + ".key",
		pki.KubeletServing + ".crt", pki.KubeletServing + ".key", pki.KubeProxy + ".crt", pki.KubeProxy + ".key"} {
		b, err := os.ReadFile(filepath.Join(s.Cfg.Control.Dirs.TLS(), f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tls, f), b, 0o600)
	}
	a := &agent.Agent{Cfg: cfg, Log: discard(), Out: logging.NewOut(io.Discard),
		Joined: &join.Result{Server: "https://10.0.0.1:6443", Settings: s.Cfg.Control.Cluster, Node: join.Node{Name: "a1", IP: "127.0.0.1"}}}
	if err := a.Prepare(); err != nil {
		t.Fatal(err)
	}
	p, err := a.Plan("/payload/bin")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
