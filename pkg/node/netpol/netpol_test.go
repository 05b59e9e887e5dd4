package netpol

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
)

func cidr(t *testing.T, s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInitRefusesHostWithoutIpset(t *testing.T) {
	c := New(Config{NodeName: "n1", ServiceCIDR: cidr(t, "10.43.0.0/16"), Client: fake.NewClientset(),
		LookPath: func(p string) (string, error) {
			if p == "ipset" {
				return "", errors.New("not found")
			}
			return "/usr/sbin/" + p, nil
		}})
	err := c.Init(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ipset") || !strings.Contains(err.Error(), "--disable-network-policy") {
		t.Fatalf("want an error naming ipset and the flag, got %v", err)
	}
	ok := New(Config{NodeName: "n1", ServiceCIDR: cidr(t, "10.43.0.0/16"), Client: fake.NewClientset(),
		LookPath: func(p string) (string, error) { return "/usr/sbin/" + p, nil }})
	if err := ok.Init(context.Background()); err != nil {
		t.Fatalf("all tools there: %v", err)
	}
}

func TestKubeRouterConfigIsPolicyOnly(t *testing.T) {
	c := New(Config{NodeName: "n1", ServiceCIDR: cidr(t, "10.43.0.0/16")})
	kr := c.krConfig()
	if !kr.RunFirewall || kr.RunRouter || kr.RunServiceProxy || kr.MetricsEnabled {
		t.Errorf("firewall only, no metrics: %+v", kr)
	}
	if !kr.EnableIPv4 || kr.EnableIPv6 || len(kr.ClusterIPCIDRs) != 1 || kr.ClusterIPCIDRs[0] != "10.43.0.0/16" || kr.HostnameOverride != "n1" {
		t.Errorf("service CIDR and node: %+v", kr)
	}
	kr6 := New(Config{NodeName: "n1", ServiceCIDR: cidr(t, "fd00:43::/112")}).krConfig()
	if kr6.EnableIPv4 || !kr6.EnableIPv6 {
		t.Errorf("IPv6 service CIDR: %+v", kr6)
	}
}

func TestReadyAfterFirstSyncOnly(t *testing.T) {
	c := New(Config{})
	if c.Ready(context.Background()) == nil {
		t.Fatal("ready before any sync")
	}
	close(c.synced)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A node that never enforced policies has nothing to clean and needs no ipset.
func TestCleanerLeavesCleanNodeAlone(t *testing.T) {
	looked := false
	cl := &Cleaner{Config: Config{Log: slog.New(slog.DiscardHandler),
		LookPath: func(string) (string, error) { looked = true; return "", errors.New("no") }},
		ChainExists: func(chain string) (bool, error) {
			if chain != ForwardChain {
				t.Errorf("checked %s", chain)
			}
			return false, nil
		}}
	if err := cl.Start(context.Background()); err != nil || looked {
		t.Fatalf("err %v, looked for tools %v", err, looked)
	}
}

// Only the policy controller of kube-router is linked: the advisories against v2.1.0 are in
// its service proxy (externalIPs) and its BGP server, which must stay out.
func TestOnlyThePolicyControllerIsLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "osrg/gobgp") || strings.Contains(p, "kube-router/v2/pkg/controllers/") && !strings.HasSuffix(p, "/netpol") {
			t.Errorf("linked: %s", p)
		}
	}
	if !strings.Contains(string(out), "kube-router/v2/pkg/controllers/netpol") {
		t.Error("the policy controller is not linked")
	}
}

// The checks other components rely on go first in kube-router's chains, in order, above the
// rules kube-router wrote there, and only where both chains exist.
func TestFirstJumpsPrecedeKubeRoutersAccept(t *testing.T) {
	f := iptablestest.NewFake()
	for _, c := range []utiliptables.Chain{forwardChain, outputChain, "OUTPOST-SERVICE-CIDR", "KUBE-SERVICES"} {
		f.EnsureChain(utiliptables.TableFilter, c)
	}
	f.EnsureRule(utiliptables.Append, utiliptables.TableFilter, forwardChain, "-m", "mark", "--mark", "0x20000/0x20000", "-j", "ACCEPT")
	jumps := FirstJumps("OUTPOST-SERVICE-CIDR")
	for range 2 { // the second pass adds nothing
		if err := ensureFirst(f, jumps); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	f.SaveInto(utiliptables.TableFilter, &b)
	var fwd []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "-A "+string(forwardChain)+" ") {
			fwd = append(fwd, l)
		}
	}
	if len(fwd) != 3 || !strings.Contains(fwd[0], "-j OUTPOST-SERVICE-CIDR") || !strings.Contains(fwd[1], "--ctstate NEW") ||
		!strings.Contains(fwd[1], "-j KUBE-SERVICES") || !strings.Contains(fwd[2], "-j ACCEPT") {
		t.Errorf("FORWARD chain of kube-router:\n%s", strings.Join(fwd, "\n"))
	}
	if strings.Contains(b.String(), "KUBE-PROXY-FIREWALL") || strings.Contains(b.String(), "KUBE-ROUTER-INPUT") {
		t.Errorf("jumped to or from a chain that does not exist:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "-A "+string(outputChain)+" -m comment --comment outpost:before-netpol-accept -j OUTPOST-SERVICE-CIDR") &&
		!strings.Contains(b.String(), "-A "+string(outputChain)+` -m comment --comment "outpost:before-netpol-accept" -j OUTPOST-SERVICE-CIDR`) {
		t.Errorf("OUTPUT:\n%s", b.String())
	}
}
