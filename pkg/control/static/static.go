// Package static serves the files of a server directory under /static/ on the apiserver's
// port, as k3s does for charts a HelmChart names with
// https://%{KUBERNETES_API}%/static/charts/NAME.tgz. Unlike k3s, the path sits behind the
// apiserver's authentication and authorization (non-resource URL /static/*): charts a site
// carries in may hold its own configuration, and the in-process Helm controller fetches them
// as cluster admin.
package static

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Prefix is the URL path the files are under.
const Prefix = "/static/"

// Handler serves regular files below Dir; directories (no listings), paths that leave Dir
// (through .. or a symlink) and missing files are 404. A missing Dir is no files.
type Handler struct {
	Dir string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := strings.CutPrefix(path.Clean(r.URL.Path), strings.TrimSuffix(Prefix, "/")+"/")
	if !ok || rel == "" || !fs.ValidPath(rel) {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(h.Dir)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	f, err := root.Open(rel) // os.Root refuses to leave Dir, symlinks included
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(rel, ".tgz") {
		w.Header().Set("Content-Type", "application/gzip")
	}
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}
