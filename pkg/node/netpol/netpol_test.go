package netpol

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
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
