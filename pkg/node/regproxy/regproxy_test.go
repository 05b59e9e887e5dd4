package regproxy

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/outpostk8s/outpost/pkg/spec/registries"
)

// mirror is a real registry over TLS behind basic auth, holding mirrored/app:1.
func mirror(t *testing.T) (*httptest.Server, string, string, string) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != "puller" || pw != "right" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/mirrored/app:1")
	if err := remote.Write(ref, img, remote.WithTransport(srv.Client().Transport),
		remote.WithAuth(&authn.Basic{Username: "puller", Password: "right"})); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	d, _ := img.Digest()
	cfg, _ := img.ConfigName()
	return srv, ca, d.String(), cfg.String()
}

func start(t *testing.T, endpoint, ca, password string) *Proxy {
	t.Helper()
	u, _ := url.Parse(endpoint)
	f := &registries.File{
		Mirrors: map[string]registries.Mirror{"docker.io": {Endpoints: []string{endpoint}, Rewrites: map[string]string{"^library/(.*)$": "mirrored/$1"}}},
		Configs: map[string]registries.Config{u.Host: {Auth: &registries.Auth{Username: "puller", Password: password}, TLS: &registries.TLS{CAFile: ca}}},
	}
	p := &Proxy{Routes: f.RewriteRoutes(), Config: f.ConfigFor, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(ctx) })
	return p
}

func get(t *testing.T, p *Proxy, path string, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.Address().URL+path, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	if token != "" {
		req.Header.Set(Header, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPullsUnderTheRewrittenName(t *testing.T) {
	srv, ca, digest, config := mirror(t)
	p := start(t, srv.URL, ca, "right")
	addr := p.Address()
	if !strings.HasPrefix(addr.URL, "http://127.0.0.1:") {
		t.Fatalf("proxy must listen on loopback only: %s", addr.URL)
	}
	// containerd asks for library/app (docker.io/app); the mirror holds mirrored/app.
	resp, body := get(t, p, "/r/0/v2/library/app/manifests/1?ns=docker.io", addr.Token)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("manifest through the proxy: %d %s %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), body)
	}
	if !strings.Contains(body, `"layers"`) {
		t.Errorf("manifest body: %s", body)
	}
	// The digest reference works the same way, and a blob (its config).
	if resp, _ := get(t, p, "/r/0/v2/library/app/manifests/"+digest, addr.Token); resp.StatusCode != http.StatusOK {
		t.Errorf("by digest: %d", resp.StatusCode)
	}
	if resp, body := get(t, p, "/r/0/v2/library/app/blobs/"+config, addr.Token); resp.StatusCode != http.StatusOK || !strings.Contains(body, "rootfs") {
		t.Errorf("blob: %d %.60q", resp.StatusCode, body)
	}
	// A name the rules do not rewrite stays as it is: the mirror has no such repository.
	if resp, _ := get(t, p, "/r/0/v2/other/app/manifests/1", addr.Token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unrewritten name: %d, want the mirror's 404", resp.StatusCode)
	}
}

func TestRefusesWithoutTheSecretAndReportsBadCredentials(t *testing.T) {
	srv, ca, _, _ := mirror(t)
	p := start(t, srv.URL, ca, "right")
	if resp, _ := get(t, p, "/r/0/v2/library/app/manifests/1", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("no secret: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, p, "/r/0/v2/library/app/manifests/1", "Bearer wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong secret: %d, want 403", resp.StatusCode)
	}
	for _, path := range []string{"/r/7/v2/library/app/manifests/1", "/r/0/v2/library/app/tags/list", "/v2/"} {
		if resp, _ := get(t, p, path, p.Address().Token); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	bad := start(t, srv.URL, ca, "wrong")
	resp, body := get(t, bad, "/r/0/v2/library/app/manifests/1", bad.Address().Token)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "credentials") {
		t.Errorf("wrong password: %d %s, want an error so containerd tries the next endpoint", resp.StatusCode, body)
	}
	// A mirror that does not answer: an error too, not a hang.
	down := start(t, "https://127.0.0.1:1", ca, "right")
	if resp, _ := get(t, down, "/r/0/v2/library/app/manifests/1", down.Address().Token); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("mirror down: %d, want 502", resp.StatusCode)
	}
}
