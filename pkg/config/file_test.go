package config

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
