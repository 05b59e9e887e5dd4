package mig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRefusals(t *testing.T) {
	for _, bad := range []string{
		"version: v2\nmig-configs: {a: [{devices: all}]}",
		"version: v1\nmig-configs: {a: [{devices: some}]}",
		"version: v1\nmig-configs: {a: [{devices: all, device-filter: '0x20B010DE'}]}",
		"version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false, mig-devices: {1g.5gb: 1}}]}",
		"version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true, mig-devices: {1g.5gb: 0}}]}",
		"version: v1\nmig-configs: {a: []}",
		"version: v1\nmig-configs: {}",
		"{{",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestLoadAndHas(t *testing.T) {
	if f, err := Load(""); f != nil || err != nil {
		t.Fatalf("no file: %v %v", f, err)
	}
	p := filepath.Join(t.TempDir(), "layouts.yaml")
	os.WriteFile(p, []byte("version: v1\nmig-configs:\n  half:\n    - devices: [0, 1]\n      mig-enabled: true\n      mig-devices: {\"3g.20gb\": 2}\n"), 0o600)
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Configs["half"][0].Devices; d.All || !d.Includes(1) || d.Includes(2) {
		t.Errorf("devices %+v", d)
	}
	for name, want := range map[string]bool{"half": true, "all-balanced": true, "all-1g.5gb": true, "all-": false, "quarter": false} {
		if f.Has(name) != want {
			t.Errorf("Has(%q) = %v", name, !want)
		}
	}
	var none *File // no file: only the built-in names
	if !none.Has("all-disabled") || none.Has("half") {
		t.Error("a nil file's names")
	}
	// A bad file is named in the error.
	os.WriteFile(p, []byte("version: v2\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v", err)
	}
}

// Devices writes back as it was read: "all" or the indexes.
func TestDevicesRoundTrip(t *testing.T) {
	for _, in := range []string{`"all"`, `[0,3]`} {
		var d Devices
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			t.Fatal(err)
		}
		if out, _ := json.Marshal(d); string(out) != in {
			t.Errorf("%s came back as %s", in, out)
		}
	}
}
