package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestServesFilesOnly(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "static")
	os.MkdirAll(filepath.Join(dir, "charts"), 0o755)
	os.WriteFile(filepath.Join(dir, "charts", "app.tgz"), []byte("chart"), 0o644)
	os.WriteFile(filepath.Join(root, "secret"), []byte("token"), 0o600)
	os.Symlink(filepath.Join(root, "secret"), filepath.Join(dir, "charts", "escape.tgz"))
	srv := httptest.NewServer(&Handler{Dir: dir})
	defer srv.Close()
	get := func(p string) (int, string) {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/static/charts/app.tgz"); code != 200 || body != "chart" {
		t.Errorf("chart: %d %q", code, body)
	}
	for _, p := range []string{"/static/charts/", "/static/charts", "/static/", "/static/charts/none.tgz",
		"/static/../secret", "/static/charts/%2e%2e/%2e%2e/secret", "/static/charts/escape.tgz"} {
		if code, body := get(p); code != 404 {
			t.Errorf("%s: %d %q, want 404", p, code, body)
		}
	}
	if code, _ := (&Handler{Dir: filepath.Join(root, "none")}).code("/static/x"); code != 404 {
		t.Errorf("missing dir: %d", code)
	}
}

func (h *Handler) code(p string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
	return rec.Code, rec.Body.String()
}
