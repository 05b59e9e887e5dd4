package kubelet

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRenderCgroupV1AllowsV1(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		b, err := Render(Config{ClusterDNS: net.ParseIP("10.43.0.10"), ClusterDomain: "cluster.local",
			RuntimeSocket: "/run/o/c.sock", ClientCAFile: "/ca", CgroupV2: v2})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		_, has := m["failCgroupV1"]
		if has == v2 {
			t.Errorf("v2=%v: failCgroupV1 present=%v", v2, has)
		}
		if m["containerRuntimeEndpoint"] != "unix:///run/o/c.sock" || m["cgroupDriver"] != "cgroupfs" {
			t.Errorf("bad config: %s", b)
		}
		authn := m["authentication"].(map[string]any)
		if authn["anonymous"].(map[string]any)["enabled"] != false {
			t.Error("anonymous kubelet access enabled")
		}
		if dns := m["clusterDNS"].([]any); dns[0] != "10.43.0.10" {
			t.Errorf("clusterDNS %v", dns)
		}
	}
}

func TestArgsUserOverrides(t *testing.T) {
	a, err := Args(Config{NodeName: "n1", NodeIP: net.ParseIP("192.0.2.2"), Extra: []string{"v=3", "max-pods=50"}})
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(a, " ")
	for _, want := range []string{"--hostname-override=n1", "--node-ip=192.0.2.2", "--v=3", "--max-pods=50"} {
		if !strings.Contains(s, want) {
			t.Errorf("args lack %s: %s", want, s)
		}
	}
}

func TestResolvConf(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 127.0.0.53\n"), 0o644)
	if got := ResolvConf(root); got != "/etc/resolv.conf" {
		t.Errorf("no resolved file: got %s", got)
	}
	os.MkdirAll(filepath.Join(root, "run/systemd/resolve"), 0o755)
	os.WriteFile(filepath.Join(root, "run/systemd/resolve/resolv.conf"), []byte("nameserver 10.0.0.1\n"), 0o644)
	if got := ResolvConf(root); got != "/run/systemd/resolve/resolv.conf" {
		t.Errorf("stub resolver: got %s", got)
	}
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 10.255.255.53\n"), 0o644)
	if got := ResolvConf(root); got != "/etc/resolv.conf" {
		t.Errorf("real resolver: got %s", got)
	}
}
