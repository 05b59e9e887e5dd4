// Package servicecidr rejects, on the node, traffic to an address in the service CIDR that no
// Service port claimed. kube-proxy's iptables mode DNATs only the ClusterIP:port pairs that
// exist; anything else addressed to the service CIDR (an unassigned ClusterIP, a Service's IP
// on a port it lacks) would otherwise leave through the default route to the site network.
// nftables-mode kube-proxy rejects such packets itself; this gives iptables mode the same.
//
// The filter table sees packets after the nat table's DNAT, so a packet that still has a
// destination in the service CIDR there matched no Service: rejecting it cannot hit traffic
// kube-proxy handles.
package servicecidr

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Chain holds the reject rules; killall and the test harness remove every OUTPOST- chain.
const Chain utiliptables.Chain = "OUTPOST-SERVICE-CIDR"

// Guard keeps the rules in place: it writes them in Init and checks them every Interval
// (someone may flush the table). It leaves them when it stops: pods outlive the node's
// process by design, and their traffic must stay fenced until the uninstaller clears it.
type Guard struct {
	CIDR     *net.IPNet
	IPT      utiliptables.Interface // nil: the host's iptables for CIDR's family
	Interval time.Duration          // 0: one minute
	Log      *slog.Logger

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	written bool // the chain was written whole once by this process
}

var _ component.Component = (*Guard)(nil)

func (g *Guard) Name() string { return "service-cidr" }

func (g *Guard) Init(context.Context) error {
	if g.CIDR == nil {
		return fmt.Errorf("service CIDR guard: no service CIDR")
	}
	if g.IPT == nil {
		proto := utiliptables.ProtocolIPv4
		if g.CIDR.IP.To4() == nil {
			proto = utiliptables.ProtocolIPv6
		}
		g.IPT = utiliptables.New(proto)
	}
	return g.Ensure()
}

func (g *Guard) Start(ctx context.Context) error {
	every := g.Interval
	if every <= 0 {
		every = time.Minute
	}
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := g.Ensure(); err != nil {
					g.Log.Warn("service CIDR reject rules", "err", err)
				}
			}
		}
	}()
	return nil
}

func (g *Guard) Stop(context.Context) error {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
	return nil
}

// Ensure writes the chain and the jumps to it from OUTPUT (the host's own traffic) and FORWARD
// (pods'). The jumps go first: flannel accepts pod traffic early in FORWARD. The first call in a
// process writes the chain whole (iptables-restore --noflush replaces only this chain), so the
// rules of a service CIDR used before a restart go; later calls only restore what is missing,
// keeping the counters.
func (g *Guard) Ensure() error {
	cidr := g.CIDR.String()
	icmp := "icmp-port-unreachable"
	if g.IPT.IsIPv6() {
		icmp = "icmp6-port-unreachable"
	}
	// Comments without spaces: the restore text then needs no quoting, and the rules read back
	// exactly as written.
	rules := [][]string{
		{"-m", "comment", "--comment", "outpost:no-Service-has-this-port", "-d", cidr, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"-m", "comment", "--comment", "outpost:no-Service-has-this-port", "-d", cidr, "-j", "REJECT", "--reject-with", icmp},
	}
	if !g.written {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", Chain)
		for _, r := range rules {
			fmt.Fprintf(&b, "-A %s", Chain)
			b.WriteString(" " + strings.Join(r, " "))
			b.WriteString("\n")
		}
		b.WriteString("COMMIT\n")
		if err := g.IPT.Restore(utiliptables.TableFilter, b.Bytes(), utiliptables.NoFlushTables, utiliptables.NoRestoreCounters); err != nil {
			return fmt.Errorf("write chain %s: %w", Chain, err)
		}
		g.written = true
	} else {
		if _, err := g.IPT.EnsureChain(utiliptables.TableFilter, Chain); err != nil {
			return fmt.Errorf("chain %s: %w", Chain, err)
		}
		for _, r := range rules {
			if _, err := g.IPT.EnsureRule(utiliptables.Append, utiliptables.TableFilter, Chain, r...); err != nil {
				return fmt.Errorf("rule in %s: %w", Chain, err)
			}
		}
	}
	for _, from := range []utiliptables.Chain{utiliptables.ChainOutput, utiliptables.ChainForward} {
		if _, err := g.IPT.EnsureRule(utiliptables.Prepend, utiliptables.TableFilter, from,
			"-m", "comment", "--comment", "outpost:service-CIDR-traffic-no-Service-took", "-j", string(Chain)); err != nil {
			return fmt.Errorf("jump from %s: %w", from, err)
		}
	}
	return nil
}
