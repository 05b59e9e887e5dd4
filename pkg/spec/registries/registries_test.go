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

// Credentials and TLS are looked up by the host containerd contacts: Docker Hub's config
// under docker.io also serves registry-1.docker.io.
func TestCredentialsAndConfigByHost(t *testing.T) {
	ca := writeCA(t, t.TempDir())
	f, err := load(t, `
mirrors:
  docker.io:
    endpoint: ["https://10.0.0.9:5000", "http://mirror.local/proxy/"]
configs:
  "10.0.0.9:5000":
    auth: {username: u, password: p}
    tls: {ca_file: `+ca+`}
  docker.io:
    auth: {identity_token: tok}
    tls: {insecure_skip_verify: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	cred := f.Credentials()
	if cred["10.0.0.9:5000"].Username != "u" || cred["registry-1.docker.io"].IdentityToken != "tok" || cred["docker.io"].IdentityToken != "tok" {
		t.Errorf("credentials %+v", cred)
	}
	if c := f.ConfigFor("registry-1.docker.io"); c.TLS == nil || !c.TLS.InsecureSkipVerify {
		t.Errorf("registry-1.docker.io config: %+v", c)
	}
	if c := f.ConfigFor("10.0.0.9:5000"); c.TLS == nil || c.TLS.CAFile != ca {
		t.Errorf("10.0.0.9:5000 config: %+v", c)
	}
	if c := f.ConfigFor("other.example"); c.Auth != nil || c.TLS != nil {
		t.Errorf("an unnamed host has a config: %+v", c)
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
	if f, err := Load(filepath.Join(dir, "missing.yaml"), false); err != nil || len(f.Mirrors)+len(f.Configs) != 0 {
		t.Errorf("missing default file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), true); err == nil {
		t.Error("a named file that is missing was accepted")
	}
}

func TestRewriteRoutes(t *testing.T) {
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
	if routes[0].Registry != "docker.io" || routes[0].Endpoint.Scheme != "https" {
		t.Errorf("route %+v", routes[0])
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
}
