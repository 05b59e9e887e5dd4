// Package servicelb is Outpost's service load balancer (k3s's ServiceLB, done in-process): it
// gives each LoadBalancer Service without a loadBalancerClass the addresses of the nodes as
// status.loadBalancer.ingress. kube-proxy on every node then DNATs port P on those addresses
// to the Service, as it does for any load-balancer IP, so no per-Service pods are needed.
//
// A port can be held by one Service only: the nodes' addresses are shared, so a second Service
// asking for the same port and protocol stays pending, with a Warning Event naming the holder,
// until the holder goes.
package servicelb

import (
	"fmt"
	"net"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// EnableLabel limits the nodes that serve load balancers: when any node has it "true", only
// those do; a node with "false" never does (k3s's svccontroller.k3s.cattle.io/enablelb).
const EnableLabel = "svccontroller.outpost.io/enablelb"

// Port is one protocol and port on the nodes' addresses.
type Port struct {
	Protocol corev1.Protocol
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// Decision is what one Service's status should say.
type Decision struct {
	Service *corev1.Service
	Ingress []corev1.LoadBalancerIngress // nil: pending
	// Why pending: the port and who holds it ("" when admitted or when no node serves).
	Port   Port
	Holder string
}

// Ours tells whether the Service is this controller's to serve.
func Ours(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil && s.DeletionTimestamp == nil
}

// Plan decides every Service's ingress. A port recorded as granted in a Service's status
// (ingress[].ports) stays that Service's while its spec asks for it, so a restart or an edit
// elsewhere moves nothing; free ports go to the oldest Service first. reserved are ports
// Outpost itself listens on at the nodes' addresses, with what listens there.
func Plan(services []*corev1.Service, nodes []*corev1.Node, reserved map[Port]string) []Decision {
	held := map[Port]string{}
	for p, who := range reserved {
		held[p] = who
	}
	// A NodePort is open on every node address too; a load balancer port on it would shadow it.
	for _, s := range services {
		for _, sp := range s.Spec.Ports {
			if sp.NodePort != 0 {
				p := Port{protocol(sp.Protocol), sp.NodePort}
				if _, ok := held[p]; !ok {
					held[p] = "the NodePort of Service " + key(s)
				}
			}
		}
	}
	var ours []*corev1.Service
	for _, s := range services {
		if Ours(s) {
			ours = append(ours, s)
		}
	}
	sort.SliceStable(ours, func(i, j int) bool {
		a, b := ours[i], ours[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return key(a) < key(b)
	})
	// Holders first: what a Service was granted and still asks for is its own.
	owner := map[Port]string{}
	for _, s := range ours {
		g := granted(s)
		for _, p := range ports(s) {
			if _, ok := held[p]; !ok && owner[p] == "" && g[p] {
				owner[p] = key(s)
			}
		}
	}
	addrs := Addresses(nodes)
	out := make([]Decision, 0, len(ours))
	for _, s := range ours {
		d := Decision{Service: s}
		for _, p := range ports(s) {
			if who, ok := held[p]; ok && who != "the NodePort of Service "+key(s) {
				d.Port, d.Holder = p, who
				break
			}
			if o := owner[p]; o != "" && o != key(s) {
				d.Port, d.Holder = p, "Service "+o
				break
			}
		}
		if d.Holder == "" {
			for _, p := range ports(s) {
				owner[p] = key(s)
			}
			d.Ingress = ingressFor(s, addrs)
			// No node serves right now (all NotReady, say): keep what the Service has rather
			// than drop its forwarding while its pods may still run.
			if len(d.Ingress) == 0 && len(s.Status.LoadBalancer.Ingress) > 0 {
				d.Ingress = s.Status.LoadBalancer.Ingress
			}
		}
		out = append(out, d)
	}
	return out
}

// ports are the Service's ports on the nodes' addresses.
func ports(s *corev1.Service) []Port {
	var out []Port
	for _, sp := range s.Spec.Ports {
		out = append(out, Port{protocol(sp.Protocol), sp.Port})
	}
	return out
}

// granted reads back the ports this controller recorded in the Service's status.
func granted(s *corev1.Service) map[Port]bool {
	g := map[Port]bool{}
	for _, in := range s.Status.LoadBalancer.Ingress {
		for _, ps := range in.Ports {
			g[Port{protocol(ps.Protocol), ps.Port}] = true
		}
	}
	return g
}

// Addresses are the serving nodes' addresses, sorted: each Ready node's ExternalIP, or its
// InternalIP where it has none, limited by EnableLabel.
func Addresses(nodes []*corev1.Node) []net.IP {
	labelled := false
	for _, n := range nodes {
		if n.Labels[EnableLabel] == "true" {
			labelled = true
		}
	}
	var out []net.IP
	seen := map[string]bool{}
	for _, n := range nodes {
		if v := n.Labels[EnableLabel]; v == "false" || (labelled && v != "true") || !ready(n) || n.DeletionTimestamp != nil {
			continue
		}
		for _, ip := range nodeIPs(n) {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				out = append(out, ip)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// nodeIPs prefers external addresses per family, as a load balancer is reached from outside.
func nodeIPs(n *corev1.Node) []net.IP {
	byFamily := map[bool][]net.IP{}
	for _, t := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, a := range n.Status.Addresses {
			ip := net.ParseIP(a.Address)
			if a.Type != t || ip == nil {
				continue
			}
			v4 := ip.To4() != nil
			if len(byFamily[v4]) == 0 || t == corev1.NodeExternalIP {
				byFamily[v4] = append(byFamily[v4], ip)
			}
		}
		if len(byFamily[true]) > 0 && len(byFamily[false]) > 0 {
			break
		}
	}
	return append(byFamily[true], byFamily[false]...)
}

func ingressFor(s *corev1.Service, addrs []net.IP) []corev1.LoadBalancerIngress {
	fams := map[corev1.IPFamily]bool{}
	for _, f := range s.Spec.IPFamilies {
		fams[f] = true
	}
	if len(fams) == 0 {
		fams[corev1.IPv4Protocol] = true
	}
	var ps []corev1.PortStatus
	for _, p := range ports(s) {
		ps = append(ps, corev1.PortStatus{Port: p.Port, Protocol: p.Protocol})
	}
	var out []corev1.LoadBalancerIngress
	for _, ip := range addrs {
		f := corev1.IPv4Protocol
		if ip.To4() == nil {
			f = corev1.IPv6Protocol
		}
		if fams[f] {
			// The granted ports ride along: they are the record of who holds what.
			out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), Ports: ps})
		}
	}
	return out
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func key(s *corev1.Service) string { return s.Namespace + "/" + s.Name }
