package hostcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func fakeHost(t *testing.T, files map[string]string, magic int64, tools ...string) Host {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have := map[string]bool{}
	for _, tl := range tools {
		have[tl] = true
	}
	return Host{
		Root: root,
		LookPath: func(n string) (string, error) {
			if have[n] {
				return "/usr/sbin/" + n, nil
			}
			return "", errors.New("not found")
		},
		Statfs: func(string, *unix.Statfs_t) error { return nil },
		Euid:   func() int { return 0 },
	}.withMagic(magic)
}

func (h Host) withMagic(m int64) Host {
	h.Statfs = func(_ string, st *unix.Statfs_t) error { st.Type = m; return nil }
	return h
}

func TestDetect(t *testing.T) {
	// CapEff with bit 24 (CAP_SYS_RESOURCE) cleared: 0x1fffeffffff has bit 24 = 0? compute explicitly.
	full := uint64(1<<41 - 1)
	without := full &^ (1 << 24)
	tests := []struct {
		name   string
		capEff uint64
		magic  int64
		br     bool
		want   Facts
	}{
		{"v1 no cap", without, 0x01021994, false, Facts{CgroupV2: false, OOMScoreAdjRestricted: true}},
		{"v2 with cap and br", full, unix.CGROUP2_SUPER_MAGIC, true, Facts{CgroupV2: true, BrNetfilter: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"/proc/self/status": "Name:\tx\nCapEff:\t" + hex(tt.capEff) + "\n"}
			if tt.br {
				files["/proc/sys/net/bridge/bridge-nf-call-iptables"] = "1"
			}
			got := fakeHost(t, files, tt.magic).Detect()
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func hex(v uint64) string {
	const digits = "0123456789abcdef"
	s := ""
	for i := 0; i < 16; i++ {
		s = string(digits[v&0xf]) + s
		v >>= 4
	}
	return s
}

func TestChecksReportMissingTool(t *testing.T) {
	h := fakeHost(t, map[string]string{
		"/proc/filesystems":    "nodev\toverlay\n",
		"/sys/fs/cgroup/cpu/x": "", "/sys/fs/cgroup/memory/x": "", "/sys/fs/cgroup/pids/x": "",
	}, 0, "ip6tables", "mount", "nsenter")
	cs := h.Checks()
	c, bad := FirstFatal(cs, true)
	if !bad || c.Name != "tool iptables" {
		t.Fatalf("first fatal = %+v, want tool iptables", c)
	}
	// A control plane alone needs neither iptables nor cgroups: it starts.
	if c, bad := FirstFatal(cs, false); bad {
		t.Errorf("without a node, %s still fatal", c.Name)
	}
	if !strings.Contains(c.String(), "FAIL") || !strings.Contains(c.String(), "apt-get install iptables") {
		t.Fatalf("line %q lacks status or fix", c.String())
	}
}

// A host without the cpu controller (a network namespace entered with ip netns exec, say) can
// run a control plane but not a node.
func TestMissingCgroupFatalOnlyForNode(t *testing.T) {
	h := fakeHost(t, map[string]string{
		"/proc/filesystems":       "nodev\toverlay\n",
		"/sys/fs/cgroup/memory/x": "", "/sys/fs/cgroup/pids/x": "",
	}, 0)
	cs := h.Checks()
	if c, bad := FirstFatal(cs, true); !bad || c.Name != "cgroup controller cpu" {
		t.Fatalf("with a node: %+v", c)
	}
	if c, bad := FirstFatal(cs, false); bad {
		t.Errorf("without a node, %s fatal", c.Name)
	}
	user := fakeHost(t, map[string]string{}, 0)
	user.Euid = func() int { return 1000 }
	if c, bad := FirstFatal(user.Checks(), false); !bad || c.Name != "running as root" {
		t.Errorf("not root, no node: %+v", c)
	}
}

// NetworkPolicy's kernel matches: found loaded, or as a module of the running release, and
// reported (not fatal) when missing, with the flag that runs without them.
func TestNetworkPolicyKernelChecks(t *testing.T) {
	loaded := fakeHost(t, map[string]string{"/proc/net/ip_tables_matches": "tcp\nset\nphysdev\n"}, 0)
	module := fakeHost(t, map[string]string{"/proc/sys/kernel/osrelease": "6.1.0-9-amd64\n",
		"/lib/modules/6.1.0-9-amd64/modules.dep": "kernel/net/netfilter/xt_set.ko: kernel/net/netfilter/ipset/ip_set.ko\n"}, 0)
	none := fakeHost(t, map[string]string{"/proc/net/ip_tables_matches": "tcp\n"}, 0)
	if !loaded.XTMatch("set", "xt_set") || !loaded.XTMatch("physdev", "xt_physdev") {
		t.Error("loaded matches not found")
	}
	if !module.XTMatch("set", "xt_set") || module.XTMatch("physdev", "xt_physdev") {
		t.Error("modules.dep not read")
	}
	if none.XTMatch("set", "xt_set") {
		t.Error("found a match that is not there")
	}
	for _, c := range none.Checks() {
		if c.Name == "kernel xt_set" || c.Name == "tool ipset" {
			if c.OK || c.Fatal || !strings.Contains(c.String(), "--disable-network-policy") {
				t.Errorf("%q", c.String())
			}
		}
	}
}
