package containerd

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/outpostk8s/outpost/pkg/spec/registries"
)

func TestRender(t *testing.T) {
	for _, restrict := range []bool{false, true} {
		b, err := Render(Config{Root: "/d/containerd", State: "/run/o/containerd", Socket: "/run/o/c.sock",
			BinDir: "/d/bin", CNIConfDir: "/d/cni", SandboxImage: "docker.io/outpostk8s/pause:1",
			RestrictOOMScoreAdj: restrict})
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{
			"version = 3", "root = '/d/containerd'", "address = '/run/o/c.sock'",
			"BinaryName = '/d/bin/runc'", "bin_dirs = ['/d/bin']", "conf_dir = '/d/cni'",
			"sandbox = 'docker.io/outpostk8s/pause:1'",
			"cdi_spec_dirs = ['/etc/cdi', '/var/run/cdi']",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("config lacks %q:\n%s", want, s)
			}
		}
		if want := "restrict_oom_score_adj = " + map[bool]string{true: "true", false: "false"}[restrict]; !strings.Contains(s, want) {
			t.Errorf("config lacks %q", want)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := quote("it's"); got != `"it's"` {
		t.Errorf("quote = %s", got)
	}
	if got := quote("/a/b"); got != "'/a/b'" {
		t.Errorf("quote = %s", got)
	}
}

func TestRenderNVIDIARuntimes(t *testing.T) {
	b, err := Render(Config{BinDir: "/d/bin", Runtimes: []Runtime{{"nvidia", "/usr/bin/nvidia-container-runtime"}, {"nvidia-cdi", "/usr/bin/nvidia-container-runtime.cdi"}}, DefaultRuntime: "nvidia"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"default_runtime_name = 'nvidia'",
		"containerd.runtimes.'nvidia']",
		"containerd.runtimes.'nvidia-cdi'.options]\n        BinaryName = '/usr/bin/nvidia-container-runtime.cdi'\n        SystemdCgroup = false",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	b, _ = Render(Config{BinDir: "/d/bin"})
	if !strings.Contains(string(b), "default_runtime_name = 'runc'") || strings.Contains(string(b), "nvidia") {
		t.Errorf("plain config:\n%s", b)
	}
}

func TestRenderRegistries(t *testing.T) {
	reg := &registries.File{Configs: map[string]registries.Config{
		"10.0.0.9:5000": {Auth: &registries.Auth{Username: "u", Password: `p'"w`}},
		"docker.io":     {Auth: &registries.Auth{IdentityToken: "tok"}},
	}}
	b, err := Render(Config{BinDir: "/d/bin", RegistryDir: "/d/certs.d", Registries: reg})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"config_path = '/d/certs.d'",
		"registry.configs.'10.0.0.9:5000'.auth]\n      username = 'u'\n      password = \"p'\\\"w\"",
		"registry.configs.'registry-1.docker.io'.auth]\n      identitytoken = 'tok'",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	var parsed map[string]any
	if err := toml.Unmarshal(b, &parsed); err != nil {
		t.Fatalf("not TOML: %v\n%s", err, s)
	}
	if b, _ := Render(Config{BinDir: "/d/bin"}); strings.Contains(string(b), "registry") {
		t.Errorf("no registry dir, yet:\n%s", b)
	}
}
