package servicecidr

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
)

func save(t *testing.T, f *iptablestest.FakeIPTables) string {
	t.Helper()
	var b bytes.Buffer
	if err := f.SaveInto(utiliptables.TableFilter, &b); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(b.String(), `"`, "") // the fake quotes no comments; iptables-save does
}

func TestRulesWrittenOnceAndRestored(t *testing.T) {
	_, cidr, _ := net.ParseCIDR("10.43.0.0/16")
	f := iptablestest.NewFake()
	// Someone else's rule already first in FORWARD (flannel's accept): ours must go before it.
	f.EnsureRule(utiliptables.Append, utiliptables.TableFilter, utiliptables.ChainForward, "-s", "10.42.0.0/16", "-j", "ACCEPT")
	g := &Guard{CIDR: cidr, IPT: f}
	if err := g.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := save(t, f)
	for _, want := range []string{
		"-A OUTPOST-SERVICE-CIDR -m comment --comment outpost:no-Service-has-this-port -d 10.43.0.0/16 -p tcp -j REJECT --reject-with tcp-reset",
		"-d 10.43.0.0/16 -j REJECT --reject-with icmp-port-unreachable",
		"-A OUTPUT -m comment --comment outpost:service-CIDR-traffic-no-Service-took -j OUTPOST-SERVICE-CIDR",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("missing %q in\n%s", want, first)
		}
	}
	fwd := strings.Index(first, "-A FORWARD -m comment --comment outpost")
	if acc := strings.Index(first, "-A FORWARD -s 10.42.0.0/16 -j ACCEPT"); fwd < 0 || acc < fwd {
		t.Errorf("jump not ahead of the accept rule in FORWARD:\n%s", first)
	}
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if again := save(t, f); again != first {
		t.Errorf("second Ensure changed the rules:\n%s\nwas\n%s", again, first)
	}
	// A flushed chain comes back at the next check.
	if err := f.FlushChain(utiliptables.TableFilter, Chain); err != nil {
		t.Fatal(err)
	}
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if again := save(t, f); again != first {
		t.Errorf("rules after a flush and Ensure:\n%s\nwant\n%s", again, first)
	}
}

func TestIPv6RejectsWithICMPv6(t *testing.T) {
	_, cidr, _ := net.ParseCIDR("fd00:43::/112")
	f := iptablestest.NewIPv6Fake()
	if err := (&Guard{CIDR: cidr, IPT: f}).Ensure(); err != nil {
		t.Fatal(err)
	}
	if s := save(t, f); !strings.Contains(s, "icmp6-port-unreachable") || strings.Contains(s, "icmp-port-unreachable") {
		t.Errorf("v6 rules:\n%s", s)
	}
}

func TestInitWithoutCIDRFails(t *testing.T) {
	if err := (&Guard{IPT: iptablestest.NewFake()}).Init(context.Background()); err == nil {
		t.Error("Init without a CIDR succeeded")
	}
}

// A restart with another service CIDR leaves no rule of the old one.
func TestChangedCIDRReplacesTheRules(t *testing.T) {
	_, old, _ := net.ParseCIDR("10.43.0.0/16")
	_, cur, _ := net.ParseCIDR("10.96.0.0/12")
	f := iptablestest.NewFake()
	if err := (&Guard{CIDR: old, IPT: f}).Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := (&Guard{CIDR: cur, IPT: f}).Ensure(); err != nil {
		t.Fatal(err)
	}
	s := save(t, f)
	if strings.Contains(s, "10.43.0.0/16") || strings.Count(s, "-d 10.96.0.0/12") != 2 || strings.Count(s, "-j OUTPOST-SERVICE-CIDR") != 2 {
		t.Errorf("rules after the CIDR changed:\n%s", s)
	}
}
