package netpol

import (
	"bytes"
	"fmt"
	"strings"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
)

// kube-router jumps from INPUT, FORWARD and OUTPUT to its own chains first, and those end by
// accepting every packet of a local pod that its policies let through. Rules further down the
// built-in chains never see such packets: kube-proxy's firewall for loadBalancerSourceRanges,
// its rejects for Services without endpoints, the service-CIDR reject. (k3s patches its fork
// of kube-router to accept at the end of the built-in chains instead; upstream v2.1.0 does
// not.) So the node puts jumps to those chains at the top of kube-router's chains, where they
// run first; kube-router appends its own rules below them and keeps rules it did not write.

// Jump is one rule put first in a kube-router chain.
type Jump struct {
	From  utiliptables.Chain // kube-router's chain
	To    utiliptables.Chain
	Match []string // before -j, e.g. conntrack state
}

const (
	inputChain   utiliptables.Chain = "KUBE-ROUTER-INPUT"
	forwardChain utiliptables.Chain = ForwardChain
	outputChain  utiliptables.Chain = "KUBE-ROUTER-OUTPUT"
)

// FirstJumps are the checks that must precede kube-router's accept: the service-CIDR reject
// chain, and kube-proxy's filter chains where kube-proxy itself hooks them (new connections).
func FirstJumps(serviceCIDRChain utiliptables.Chain) []Jump {
	nw := []string{"-m", "conntrack", "--ctstate", "NEW"}
	return []Jump{
		{forwardChain, serviceCIDRChain, nil},
		{outputChain, serviceCIDRChain, nil},
		{forwardChain, "KUBE-PROXY-FIREWALL", nw},
		{forwardChain, "KUBE-SERVICES", nw},
		{forwardChain, "KUBE-EXTERNAL-SERVICES", nw},
		{inputChain, "KUBE-PROXY-FIREWALL", nw},
		{inputChain, "KUBE-EXTERNAL-SERVICES", nw},
		{outputChain, "KUBE-PROXY-FIREWALL", nw},
		{outputChain, "KUBE-SERVICES", nw},
	}
}

// ensureFirst inserts each jump whose two chains exist and that is not there yet. It runs
// every few seconds (a kube-router sync restores the table it read before, dropping a jump
// inserted meanwhile), so it reads the table once and calls iptables again only to insert.
func ensureFirst(ipt utiliptables.Interface, jumps []Jump) error {
	var b bytes.Buffer
	if err := ipt.SaveInto(utiliptables.TableFilter, &b); err != nil {
		return fmt.Errorf("read the filter table: %w", err)
	}
	chains := map[utiliptables.Chain]bool{}
	var rules []string
	for _, l := range strings.Split(b.String(), "\n") {
		if name, ok := strings.CutPrefix(l, ":"); ok {
			if f := strings.Fields(name); len(f) > 0 {
				chains[utiliptables.Chain(f[0])] = true
			}
		} else if strings.HasPrefix(l, "-A ") && strings.Contains(l, firstComment) {
			rules = append(rules, l+" ")
		}
	}
	present := func(j Jump) bool {
		for _, r := range rules {
			if strings.HasPrefix(r, "-A "+string(j.From)+" ") && strings.Contains(r, " -j "+string(j.To)+" ") {
				return true
			}
		}
		return false
	}
	// Reverse order, each prepended: they end up in the listed order, above kube-router's.
	for i := len(jumps) - 1; i >= 0; i-- {
		j := jumps[i]
		if !chains[j.From] || !chains[j.To] || present(j) {
			continue
		}
		args := append(append([]string{}, j.Match...), "-m", "comment", "--comment", firstComment, "-j", string(j.To))
		if _, err := ipt.EnsureRule(utiliptables.Prepend, utiliptables.TableFilter, j.From, args...); err != nil {
			return fmt.Errorf("jump from %s to %s: %w", j.From, j.To, err)
		}
	}
	return nil
}

// firstComment marks the jumps ensureFirst keeps (without spaces: it reads back unquoted).
const firstComment = "outpost:before-netpol-accept"
