// Package hostcheck reads the facts about the host that change how Outpost configures its
// components (cgroup version, capabilities, kernel features, tools) and reports readiness.
// Every read goes through Host so tests can point it at a fake root.
package hostcheck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is the machine being inspected: a filesystem root and a PATH lookup.
type Host struct {
	Root     string                             // "/" on a real machine
	LookPath func(string) (string, error)       // exec.LookPath on a real machine
	Statfs   func(string, *unix.Statfs_t) error // unix.Statfs on a real machine
	Euid     func() int
}

// Real is the machine Outpost runs on.
func Real() Host {
	return Host{Root: "/", LookPath: exec.LookPath, Statfs: unix.Statfs, Euid: os.Geteuid}
}

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// Facts are what the components need to know about the host.
type Facts struct {
	CgroupV2 bool
	// OOMScoreAdjRestricted: without CAP_SYS_RESOURCE no process may lower its oom_score_adj,
	// and runc fails every sandbox unless containerd is told to restrict it.
	OOMScoreAdjRestricted bool
	// BrNetfilter: bridged pod traffic passes iptables; without it kube-proxy must masquerade
	// all service traffic for same-node replies to find their way back.
	BrNetfilter bool
}

// Detect reads the facts.
func (h Host) Detect() Facts {
	return Facts{
		CgroupV2:              h.CgroupV2(),
		OOMScoreAdjRestricted: !h.HasCap(capSysResource),
		BrNetfilter:           h.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"),
	}
}

const capSysResource = 24

// CgroupV2 reports whether /sys/fs/cgroup is the unified hierarchy (not hybrid v1).
func (h Host) CgroupV2() bool {
	var st unix.Statfs_t
	if err := h.Statfs(h.path("/sys/fs/cgroup"), &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// HasCap reads the effective capability set of this process.
func (h Host) HasCap(bit uint) bool {
	f, err := os.Open(h.path("/proc/self/status"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<bit) != 0
		}
	}
	return false
}

func (h Host) exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

// Filesystem reports whether the kernel knows a filesystem type.
func (h Host) Filesystem(name string) bool {
	raw, err := os.ReadFile(h.path("/proc/filesystems"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

// Check is one line of `outpost check-config`.
type Check struct {
	Name  string
	OK    bool
	Fatal bool // a start cannot go on without it
	// Node marks what only a node needs (containerd, kubelet, pods): a control plane alone
	// (--disable-agent) starts without it.
	Node   bool
	Detail string
	Fix    string
}

func (c Check) String() string {
	status := "ok"
	switch {
	case !c.OK && c.Fatal:
		status = "FAIL"
	case !c.OK:
		status = "warn"
	}
	s := fmt.Sprintf("%-5s %-28s %s", status, c.Name, c.Detail)
	if !c.OK && c.Fix != "" {
		s += " — fix: " + c.Fix
	}
	return s
}

// Checks runs every readiness check, in a stable order.
func (h Host) Checks() []Check {
	f := h.Detect()
	var out []Check
	root := h.Euid() == 0
	out = append(out, Check{Name: "running as root", OK: root, Fatal: true,
		Detail: map[bool]string{true: "yes", false: "no"}[root], Fix: "run outpost as root (sudo)"})
	cg := "v1 (hybrid or legacy)"
	if f.CgroupV2 {
		cg = "v2 (unified)"
	}
	out = append(out, Check{Name: "cgroup version", OK: true, Detail: cg})
	for _, ctl := range []string{"cpu", "memory", "pids"} {
		ok := h.cgroupController(f.CgroupV2, ctl)
		out = append(out, Check{Name: "cgroup controller " + ctl, OK: ok, Fatal: true, Node: true,
			Detail: map[bool]string{true: "enabled", false: "missing"}[ok],
			Fix:    "enable the " + ctl + " cgroup controller (kernel cmdline cgroup_enable=" + ctl + ")"})
	}
	oom := "CAP_SYS_RESOURCE held: pods may lower oom_score_adj"
	if f.OOMScoreAdjRestricted {
		oom = "no CAP_SYS_RESOURCE: containerd runs with restrict_oom_score_adj"
	}
	out = append(out, Check{Name: "oom_score_adj", OK: true, Detail: oom})
	ov := h.Filesystem("overlay")
	out = append(out, Check{Name: "overlay filesystem", OK: ov, Fatal: true, Node: true,
		Detail: map[bool]string{true: "available", false: "missing"}[ov], Fix: "modprobe overlay"})
	out = append(out, Check{Name: "br_netfilter", OK: f.BrNetfilter, Node: true,
		Detail: map[bool]string{true: "loaded", false: "not loaded: kube-proxy will masquerade all service traffic"}[f.BrNetfilter],
		Fix:    "modprobe br_netfilter"})
	for _, tool := range []string{"iptables", "ip6tables"} {
		p, err := h.LookPath(tool)
		out = append(out, Check{Name: "tool " + tool, OK: err == nil, Fatal: tool == "iptables", Node: true,
			Detail: orMissing(p, err), Fix: "apt-get install iptables"})
	}
	// NetworkPolicy (kube-router's rules): ipsets of pod addresses, matched by xt_set, and
	// bridged same-node traffic matched by xt_physdev. Not fatal: --disable-network-policy
	// runs without them, and a node with policies on refuses to start without the tool.
	for _, m := range []struct{ match, module string }{{"set", "xt_set"}, {"physdev", "xt_physdev"}} {
		ok := h.XTMatch(m.match, m.module)
		out = append(out, Check{Name: "kernel " + m.module, OK: ok, Node: true,
			Detail: map[bool]string{true: "available", false: "not found: NetworkPolicies cannot be enforced"}[ok],
			Fix:    "modprobe " + m.module + " (kernel CONFIG_NETFILTER_XT_MATCH_" + strings.ToUpper(m.match) + "), or start the server with --disable-network-policy"})
	}
	ips, err := h.LookPath("ipset")
	out = append(out, Check{Name: "tool ipset", OK: err == nil, Node: true,
		Detail: orMissing(ips, err) + " (NetworkPolicy)", Fix: "apt-get install ipset, or start the server with --disable-network-policy"})
	for _, tool := range []string{"mount", "nsenter"} {
		p, err := h.LookPath(tool)
		out = append(out, Check{Name: "tool " + tool, OK: err == nil, Fatal: true, Node: true,
			Detail: orMissing(p, err), Fix: "apt-get install util-linux mount"})
	}
	ipf, _ := os.ReadFile(h.path("/proc/sys/net/ipv4/ip_forward"))
	fwd := strings.TrimSpace(string(ipf)) == "1"
	out = append(out, Check{Name: "ip forwarding", OK: true,
		Detail: map[bool]string{true: "on", false: "off: a node turns it on at start"}[fwd]})
	return out
}

// XTMatch reports whether the kernel has an iptables match: loaded (listed in
// /proc/net/ip_tables_matches or /sys/module), or built in or loadable (named in the
// release's modules.builtin or modules.dep).
func (h Host) XTMatch(match, module string) bool {
	if raw, err := os.ReadFile(h.path("/proc/net/ip_tables_matches")); err == nil {
		for _, l := range strings.Fields(string(raw)) {
			if l == match {
				return true
			}
		}
	}
	if h.exists("/sys/module/" + module) {
		return true
	}
	rel, err := os.ReadFile(h.path("/proc/sys/kernel/osrelease"))
	if err != nil {
		return false
	}
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		raw, err := os.ReadFile(h.path(filepath.Join("/lib/modules", strings.TrimSpace(string(rel)), f)))
		if err == nil && strings.Contains(string(raw), "/"+module+".ko") {
			return true
		}
	}
	return false
}

func orMissing(p string, err error) string {
	if err != nil {
		return "not found on PATH"
	}
	return p
}

func (h Host) cgroupController(v2 bool, ctl string) bool {
	if v2 {
		raw, err := os.ReadFile(h.path("/sys/fs/cgroup/cgroup.controllers"))
		return err == nil && strings.Contains(" "+strings.TrimSpace(string(raw))+" ", " "+ctl+" ")
	}
	return h.exists("/sys/fs/cgroup/" + ctl)
}

// FirstFatal returns the first failing check a start cannot go on without; node says whether
// this start runs a node (else checks only a node needs are skipped).
func FirstFatal(cs []Check, node bool) (Check, bool) {
	for _, c := range cs {
		if !c.OK && c.Fatal && (node || !c.Node) {
			return c, true
		}
	}
	return Check{}, false
}
