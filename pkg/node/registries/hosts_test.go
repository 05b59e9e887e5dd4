package registries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	regspec "github.com/outpostk8s/outpost/pkg/spec/registries"
)

// The files are built by hand: rendering only names the TLS files, checking them is the
// spec package's.
func TestRendersMirrorsAndTLS(t *testing.T) {
	const ca = "/etc/outpost/ca.crt"
	f := &regspec.File{
		Mirrors: map[string]regspec.Mirror{
			"docker.io": {Endpoints: []string{"https://10.0.0.9:5000", "http://mirror.local/proxy/"}},
			"*":         {Endpoints: []string{"https://all.example"}},
		},
		Configs: map[string]regspec.Config{
			"10.0.0.9:5000":         {Auth: &regspec.Auth{Username: "u", Password: "p"}, TLS: &regspec.TLS{CAFile: ca}},
			"registry.example:5443": {TLS: &regspec.TLS{CAFile: ca}},
			"docker.io":             {Auth: &regspec.Auth{IdentityToken: "tok"}},
		},
	}
	files := HostsFiles(f, nil)
	docker := string(files["docker.io"])
	for _, want := range []string{`server = "https://registry-1.docker.io"`, `[host."https://10.0.0.9:5000"]`, `ca = "` + ca + `"`,
		`[host."http://mirror.local/proxy/v2"]`, "override_path = true"} {
		if !strings.Contains(docker, want) {
			t.Errorf("docker.io hosts.toml lacks %s:\n%s", want, docker)
		}
	}
	// Endpoints keep their order: the first is tried first.
	if strings.Index(docker, "10.0.0.9") > strings.Index(docker, "mirror.local") {
		t.Errorf("endpoint order lost:\n%s", docker)
	}
	if def := string(files["_default"]); strings.Contains(def, "server =") || !strings.Contains(def, `[host."https://all.example"]`) {
		t.Errorf("_default:\n%s", def)
	}
	if own := string(files["registry.example_5443_"]); !strings.Contains(own, `server = "https://registry.example:5443"`) || !strings.Contains(own, "ca = ") {
		t.Errorf("a registry with its own CA:\n%s", own)
	}
	if len(HostsFiles(&regspec.File{}, nil)) != 0 {
		t.Error("no registries rendered hosts files")
	}
	dir := filepath.Join(t.TempDir(), "certs.d")
	os.MkdirAll(filepath.Join(dir, "stale"), 0o700)
	if err := WriteHostsDir(dir, files); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Error("a registry no longer in the file kept its dir")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "docker.io", "hosts.toml")); string(b) != docker {
		t.Error("hosts.toml not written")
	}
}

func TestRewritesGoThroughTheProxy(t *testing.T) {
	f := &regspec.File{Mirrors: map[string]regspec.Mirror{
		"docker.io": {Endpoints: []string{"https://m1.example", "https://m2.example:5000"},
			Rewrites: map[string]string{"^library/(.*)": "mirrored/$1", "^(.*)$": "all/$1"}},
		"quay.io": {Endpoints: []string{"https://q.example"}},
	}}
	p := &Proxy{URL: "http://127.0.0.1:4321", Header: "Authorization", Token: "Bearer s3cret"}
	files := HostsFiles(f, p)
	docker := string(files["docker.io"])
	for _, want := range []string{`[host."http://127.0.0.1:4321/r/0/v2"]`, `[host."http://127.0.0.1:4321/r/1/v2"]`,
		`[host."http://127.0.0.1:4321/r/1/v2".header]`, `Authorization = ["Bearer s3cret"]`, `server = "https://registry-1.docker.io"`} {
		if !strings.Contains(docker, want) {
			t.Errorf("docker.io hosts.toml lacks %s:\n%s", want, docker)
		}
	}
	if strings.Contains(docker, "m1.example") {
		t.Errorf("a rewriting endpoint is reached directly:\n%s", docker)
	}
	if q := string(files["quay.io"]); !strings.Contains(q, `[host."https://q.example"]`) {
		t.Errorf("a mirror without rewrites changed:\n%s", q)
	}
}

// contrib/config/registries.yaml is what users copy: it renders one hosts.toml per registry.
func TestContribExampleRenders(t *testing.T) {
	f, err := regspec.Load("../../../contrib/config/registries.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(HostsFiles(f, nil)); n != 3 {
		t.Errorf("hosts files for %d registries, want 3", n)
	}
}
