package configfile

import (
	"strings"
	"testing"
)

// recordingSetter keeps every Set, and says the command line set "data-dir".
type recordingSetter struct{ got map[string][]string }

func (r *recordingSetter) IsSet(n string) bool { return n == "data-dir" }
func (r *recordingSetter) Set(n, v string) error {
	r.got[n] = append(r.got[n], v)
	return nil
}

// FuzzApply feeds arbitrary file content through the loader: it must not panic or hang, its
// errors must be one line naming the file, and a success may only set known flags the
// command line left alone.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"node-name: a\ntls-san: [x, z]\ndebug: true\nhttps-listen-port: 7443\n",
		"write-kubeconfig-mode: 0640\nnode-name: 0123\n",
		"gpu:\n  mig-strategy: mixed\n  time-slicing-replicas: 4\n",
		"gpu: &g {mode: auto}\nnode-name: &n x\ndata-dir: *n\n",
		"gpu:\n  <<: {mode: auto}\n  mode: 'off'\n",
		"gpu: &g {<<: *g}\n",
		"node-name: [a\n",
		"nodename: a\n",
		"- a\n- b\n",
		"node-name: a\n---\nnode-name: b\n",
		"tls-san: [[a]]\n",
		"? [a]\n: b\n",
		"",
		"~\n",
	} {
		f.Add([]byte(seed))
	}
	known := map[string]bool{"node-name": true, "tls-san": true, "debug": true, "https-listen-port": true, "data-dir": true,
		"write-kubeconfig-mode": true, "gpu-mode": true, "gpu-mig-strategy": true, "gpu-time-slicing-replicas": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &recordingSetter{got: map[string][]string{}}
		err := apply([]doc{{name: "fuzz.yaml", raw: data}}, known, s)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "fuzz.yaml") {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		for k := range s.got {
			if !known[k] {
				t.Fatalf("set unknown flag %q", k)
			}
			if s.IsSet(k) {
				t.Fatalf("file overrode the command line's %q", k)
			}
		}
	})
}
