package registries

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCA(t *testing.T, dir string) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ca.crt")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

func load(t *testing.T, body string) (*File, error) {
	p := filepath.Join(t.TempDir(), "registries.yaml")
	os.WriteFile(p, []byte(body), 0o600)
	return Load(p, true)
}

func TestRendersMirrorsTLSAndAuth(t *testing.T) {
	ca := writeCA(t, t.TempDir())
	f, err := load(t, `
mirrors:
  docker.io:
    endpoint: ["https://10.0.0.9:5000", "http://mirror.local/proxy/"]
  "*":
    endpoint: ["https://all.example"]
configs:
  "10.0.0.9:5000":
    auth: {username: u, password: p}
    tls: {ca_file: `+ca+`}
  registry.example:5443:
    tls: {ca_file: `+ca+`}
  docker.io:
    auth: {identity_token: tok}
`)
	if err != nil {
		t.Fatal(err)
	}
	files := f.HostsFiles(nil)
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
	cred := f.Credentials()
	if cred["10.0.0.9:5000"].Username != "u" || cred["registry-1.docker.io"].IdentityToken != "tok" {
		t.Errorf("credentials %+v", cred)
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

func TestBadInputNamesFileAndKey(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":            {"mirrors:\n  docker.io:\n    endpoints: [https://m]\n", `unknown field "endpoints"`},
		"not yaml":               {"mirrors: [\n", "registries.yaml"},
		"unreadable CA":          {"configs:\n  r.example:\n    tls: {ca_file: " + dir + "/none.crt}\n", `configs."r.example".tls.ca_file`},
		"bad endpoint":           {"mirrors:\n  docker.io:\n    endpoint: [\"ftp://m\"]\n", `mirrors."docker.io".endpoint[0]`},
		"cert without key":       {"configs:\n  r.example:\n    tls: {cert_file: /x}\n", "cert_file and key_file"},
		"empty auth":             {"configs:\n  r.example:\n    auth: {password: p}\n", `configs."r.example".auth`},
		"rewrite no regexp":      {"mirrors:\n  docker.io:\n    endpoint: [https://m]\n    rewrite: {\"^a/(\": \"b/$1\"}\n", `mirrors."docker.io".rewrite."^a/("`},
		"rewrite, endpoint path": {"mirrors:\n  docker.io:\n    endpoint: [https://m/api/docker]\n    rewrite: {\"^a/(.*)\": \"b/$1\"}\n", `mirrors."docker.io".endpoint[0]`},
		"rewrite, no endpoint":   {"mirrors:\n  docker.io:\n    rewrite: {\"^a/(.*)\": \"b/$1\"}\n", `mirrors."docker.io".rewrite`},
	} {
		_, err := load(t, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "registries.yaml") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if f, err := Load(filepath.Join(dir, "missing.yaml"), false); err != nil || len(f.HostsFiles(nil)) != 0 {
		t.Errorf("missing default file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), true); err == nil {
		t.Error("a named file that is missing was accepted")
	}
}

func TestRewritesGoThroughTheProxy(t *testing.T) {
	f, err := load(t, `
mirrors:
  docker.io:
    endpoint: ["https://m1.example", "https://m2.example:5000"]
    rewrite:
      "^library/(.*)": "mirrored/$1"
      "^(.*)$": "all/$1"
  quay.io:
    endpoint: ["https://q.example"]
`)
	if err != nil {
		t.Fatal(err)
	}
	routes := f.RewriteRoutes()
	if len(routes) != 2 || routes[0].Endpoint.Host != "m1.example" || routes[1].Endpoint.Host != "m2.example:5000" {
		t.Fatalf("routes %+v", routes)
	}
	// Patterns in sorted order, the first match wins: "^(.*)$" sorts before "^library/".
	if got := Rewrite(routes[0].Rules, "library/busybox"); got != "all/library/busybox" {
		t.Errorf("rewrite: %s", got)
	}
	if got := Rewrite(routes[0].Rules[1:], "library/busybox"); got != "mirrored/busybox" {
		t.Errorf("rewrite: %s", got)
	}
	if got := Rewrite(routes[0].Rules[1:], "other/x"); got != "other/x" {
		t.Errorf("no match must keep the name: %s", got)
	}
	p := &Proxy{URL: "http://127.0.0.1:4321", Header: "Authorization", Token: "Bearer s3cret"}
	files := f.HostsFiles(p)
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

// contrib/config/registries.yaml is what users copy: it loads, and its rewrite does what its
// comment says.
func TestContribExample(t *testing.T) {
	f, err := Load("../../../contrib/config/registries.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := f.Mirrors["nvcr.io"].rules()
	if err != nil {
		t.Fatal(err)
	}
	if got := Rewrite(rules, "nvidia/tritonserver"); got != "nvcr/nvidia/tritonserver" {
		t.Errorf("nvcr.io rewrite gives %q", got)
	}
	if c := f.ConfigFor("mirror.example.com:5000"); c.Auth == nil || c.Auth.Username != "puller" {
		t.Errorf("mirror credentials: %+v", c)
	}
	if len(f.HostsFiles(nil)) != 3 {
		t.Errorf("hosts files for %d registries, want 3", len(f.HostsFiles(nil)))
	}
}
