package configfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type fakeSetter struct {
	cli map[string]bool
	got map[string][]string
}

func (f *fakeSetter) IsSet(n string) bool { return f.cli[n] }
func (f *fakeSetter) Set(n, v string) error {
	f.got[n] = append(f.got[n], v)
	return nil
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestApplyOrderAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.yaml")
	write(t, main, "node-name: a\ntls-san: [x, z]\ndebug: true\nhttps-listen-port: 7443\n")
	write(t, main+".d/10-b.yaml", "node-name: b\n")
	write(t, main+".d/20-c.yaml", "data-dir: /from/file\n")
	files, err := Files(main, true)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"node-name": true, "tls-san": true, "debug": true, "https-listen-port": true, "data-dir": true}
	s := &fakeSetter{cli: map[string]bool{"data-dir": true}, got: map[string][]string{}}
	if err := Apply(files, known, s); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"node-name":         {"b"}, // drop-in overrides the main file
		"tls-san":           {"x", "z"},
		"debug":             {"true"},
		"https-listen-port": {"7443"},
		// data-dir was on the command line: the file must not touch it
	}
	if !reflect.DeepEqual(s.got, want) {
		t.Fatalf("got %v, want %v", s.got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	dir := t.TempDir()
	known := map[string]bool{"node-name": true}
	cases := map[string]string{
		"unknown key": "nodename: a\n",
		"not yaml":    "node-name: [a\n",
		"nested map":  "node-name: {a: b}\n",
	}
	wantMsg := map[string]string{"unknown key": `unknown key "nodename"`, "not yaml": "not valid YAML", "nested map": "only these sections"}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			write(t, p, body)
			err := Apply([]string{p}, known, &fakeSetter{got: map[string][]string{}})
			if err == nil || !strings.Contains(err.Error(), wantMsg[name]) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want error naming %q and the file", err, wantMsg[name])
			}
		})
	}
}

func TestFilesMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.yaml")
	if files, err := Files(p, false); err != nil || len(files) != 0 {
		t.Fatalf("default missing file: %v %v", files, err)
	}
	if _, err := Files(p, true); err == nil {
		t.Fatal("explicit missing file must be an error")
	}
}

func TestGPUSection(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.yaml")
	os.WriteFile(f, []byte("gpu:\n  mig-strategy: mixed\n  time-slicing-replicas: 4\n"), 0o600)
	fs := &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}
	known := map[string]bool{"gpu-mig-strategy": true, "gpu-time-slicing-replicas": true}
	if err := Apply([]string{f}, known, fs); err != nil {
		t.Fatal(err)
	}
	if fs.got["gpu-mig-strategy"][0] != "mixed" || fs.got["gpu-time-slicing-replicas"][0] != "4" {
		t.Errorf("got %v", fs.got)
	}
	os.WriteFile(f, []byte("gpu:\n  mig-strategi: mixed\n"), 0o600)
	if err := Apply([]string{f}, known, &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}); err == nil || !strings.Contains(err.Error(), `unknown key "gpu.mig-strategi"`) {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(f, []byte("node:\n  name: x\n"), 0o600)
	if err := Apply([]string{f}, known, &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}); err == nil || !strings.Contains(err.Error(), "only these sections") {
		t.Errorf("err = %v", err)
	}
}

// applyString runs Apply on one file holding body.
func applyString(t *testing.T, body string, known map[string]bool) (map[string][]string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	write(t, p, body)
	s := &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}
	err := Apply([]string{p}, known, s)
	return s.got, err
}

// Values reach Set as the text the user wrote: YAML's own typing would turn 0640 into 416
// (a world-writable kubeconfig) and 0123 into "83".
func TestApplyKeepsLiteralText(t *testing.T) {
	known := map[string]bool{"write-kubeconfig-mode": true, "node-name": true, "kine-compact-batch-size": true,
		"debug": true, "kine-poll-interval": true, "tls-san": true, "token": true, "https-listen-port": true}
	got, err := applyString(t, strings.Join([]string{
		"write-kubeconfig-mode: 0640",
		"node-name: 0123",
		"kine-compact-batch-size: 1e3",
		"debug: true",
		"kine-poll-interval: 5m",
		"tls-san: [0x10, 010, 'quoted', \"dq\"]",
		"token: |",
		"  K10abc::server:xyz",
		"https-listen-port: 7443",
	}, "\n")+"\n", known)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"write-kubeconfig-mode":   {"0640"},
		"node-name":               {"0123"},
		"kine-compact-batch-size": {"1e3"},
		"debug":                   {"true"},
		"kine-poll-interval":      {"5m"},
		"tls-san":                 {"0x10", "010", "quoted", "dq"},
		"token":                   {"K10abc::server:xyz\n"},
		"https-listen-port":       {"7443"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestApplyNullsAliasesAndMerges(t *testing.T) {
	known := map[string]bool{"node-name": true, "data-dir": true, "tls-san": true, "gpu-mode": true, "gpu-mig-strategy": true, "debug": true}
	got, err := applyString(t, `
node-name: &n 0640
data-dir: *n
tls-san: &sans [a, b]
debug: ~
gpu: &g
  mode: 'off'
  mig-strategy:
`, known)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"node-name": {"0640"}, "data-dir": {"0640"}, "tls-san": {"a", "b"}, "gpu-mode": {"off"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("aliases: got %q, want %q", got, want)
	}
	_, err = applyString(t, "base: &b {node-name: x, data-dir: /d}\n", map[string]bool{"node-name": true})
	if err == nil || !strings.Contains(err.Error(), "only these sections") {
		t.Fatalf("a map outside a section: err = %v", err)
	}
	// Merge keys: the map's own keys beat the merged ones.
	got, err = applyString(t, "gpu:\n  <<: {mode: auto, mig-strategy: single}\n  mode: 'off'\n", known)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"gpu-mode": {"off"}, "gpu-mig-strategy": {"single"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("merge: got %q, want %q", got, want)
	}
}

// A later file's empty value puts the flag back to its default, as before.
func TestApplyLaterNullClears(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, a, "node-name: x\n")
	write(t, b, "node-name:\n")
	s := &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}
	if err := Apply([]string{a, b}, map[string]bool{"node-name": true}, s); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 0 {
		t.Fatalf("got %q, want nothing set", s.got)
	}
}

func TestApplyShapeErrors(t *testing.T) {
	known := map[string]bool{"node-name": true, "tls-san": true, "gpu-mode": true}
	for body, want := range map[string]string{
		"- a\n- b\n":                        "the top level is a list",
		"just text\n":                       `the top level is the plain value "just text"`,
		"tls-san: [[a]]\n":                  "list elements must be plain values",
		"tls-san: [a, ~]\n":                 "list elements must be plain values",
		"gpu: {mode: {x: y}}\n":             `key "gpu.mode": value must be a string, number, boolean or list, not a map`,
		"node-name: a\nnode-name: b\n":      `key "node-name" is given twice`,
		"gpu-mode: a\ngpu: {mode: b}\n":     `key "gpu.mode" is given twice (also as "gpu-mode")`,
		"node-name: a\n---\nnode-name: b\n": "second YAML document",
		"[a]: b\n":                          "keys must be plain names",
		"node-name: *nope\n":                "not valid YAML",
		"gpu: &g {<<: *g}\n":                "merges itself",
	} {
		_, err := applyString(t, body, known)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: err = %v, want one line containing %q", body, err, want)
		}
	}
	// Empty files, comments only, a bare null document and a trailing "---" are all fine.
	for _, body := range []string{"", "# nothing\n", "~\n", "node-name: a\n---\n"} {
		if _, err := applyString(t, body, known); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// A nil known set takes any key: the outer binary reads data-dir from files it cannot judge.
func TestApplyNilKnownTakesAnyKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	write(t, p, "data-dir: /srv/x\nno-such-flag: y\n")
	s := &fakeSetter{cli: map[string]bool{}, got: map[string][]string{}}
	if err := Apply([]string{p}, nil, s); err != nil {
		t.Fatal(err)
	}
	if s.got["data-dir"][0] != "/srv/x" || s.got["no-such-flag"][0] != "y" {
		t.Fatalf("got %v", s.got)
	}
}
