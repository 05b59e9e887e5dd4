// Package cluster holds the settings every node of a cluster must agree on. A server derives
// them from its config; an agent receives the same type in its join answer, versioned so an
// agent can tell an answer it does not understand.
package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Version of the wire form. An answer without a version comes from a server that predates
// it and means version 1.
const Version = 1

// FlannelBackends are the pod networks between nodes a cluster may use.
func FlannelBackends() []string { return []string{"vxlan", "host-gw", "none"} }

// Settings are the cluster-wide values, parsed.
type Settings struct {
	ClusterCIDR    *net.IPNet // pods; each node gets a /24
	ServiceCIDR    *net.IPNet
	ClusterDNS     net.IP
	ClusterDomain  string
	FlannelBackend string
	// NetworkPolicy: every node enforces NetworkPolicies (off with --disable-network-policy).
	NetworkPolicy bool
}

type wire struct {
	Version        int    `json:"version"`
	ClusterCIDR    string `json:"clusterCIDR"`
	ServiceCIDR    string `json:"serviceCIDR"`
	ClusterDNS     string `json:"clusterDNS"`
	ClusterDomain  string `json:"clusterDomain"`
	FlannelBackend string `json:"flannelBackend"`
	// Negative, so that an answer without it (an older server) means the default: on.
	DisableNetworkPolicy bool `json:"disableNetworkPolicy,omitempty"`
}

// MarshalJSON writes the versioned wire form.
func (s Settings) MarshalJSON() ([]byte, error) {
	w := wire{Version: Version, ClusterDNS: s.ClusterDNS.String(), ClusterDomain: s.ClusterDomain, FlannelBackend: s.FlannelBackend,
		DisableNetworkPolicy: !s.NetworkPolicy}
	if s.ClusterCIDR != nil {
		w.ClusterCIDR = s.ClusterCIDR.String()
	}
	if s.ServiceCIDR != nil {
		w.ServiceCIDR = s.ServiceCIDR.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads and checks the wire form: a server's answer is input like any other.
func (s *Settings) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Version > Version {
		return fmt.Errorf("cluster settings version %d is newer than this agent knows (%d): upgrade it to the server's version", w.Version, Version)
	}
	var out Settings
	var err error
	if _, out.ClusterCIDR, err = net.ParseCIDR(w.ClusterCIDR); err != nil {
		return fmt.Errorf("cluster CIDR %q: %w", w.ClusterCIDR, err)
	}
	if _, out.ServiceCIDR, err = net.ParseCIDR(w.ServiceCIDR); err != nil {
		return fmt.Errorf("service CIDR %q: %w", w.ServiceCIDR, err)
	}
	if out.ClusterDNS = net.ParseIP(w.ClusterDNS); out.ClusterDNS == nil {
		return fmt.Errorf("cluster DNS %q is not an IP", w.ClusterDNS)
	}
	out.ClusterDomain, out.FlannelBackend, out.NetworkPolicy = w.ClusterDomain, w.FlannelBackend, !w.DisableNetworkPolicy
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// Validate checks the values against each other.
func (s Settings) Validate() error {
	if s.ClusterCIDR == nil || s.ServiceCIDR == nil || s.ClusterDNS == nil {
		return fmt.Errorf("cluster settings incomplete")
	}
	if !IsDNSName(s.ClusterDomain) {
		return fmt.Errorf("cluster domain %q is not a lower-case DNS name such as cluster.local", s.ClusterDomain)
	}
	if !slices.Contains(FlannelBackends(), s.FlannelBackend) {
		return fmt.Errorf("flannel backend %q is not one of %s", s.FlannelBackend, strings.Join(FlannelBackends(), ", "))
	}
	if !s.ServiceCIDR.Contains(s.ClusterDNS) {
		return fmt.Errorf("cluster DNS %s is outside the service CIDR %s", s.ClusterDNS, s.ServiceCIDR)
	}
	return nil
}

// IsDNSName reports whether s is a lower-case DNS name (RFC 1123 subdomain).
func IsDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Mismatch compares this server's settings with the cluster's (those its bootstrap data
// carries): every server must agree, or its agents get another network than the rest of the
// cluster. The error names the first differing setting by its flag, with both values.
func (s Settings) Mismatch(cluster Settings) error {
	str := func(n *net.IPNet) string {
		if n == nil {
			return ""
		}
		return n.String()
	}
	policy := func(on bool) string {
		if on {
			return "false"
		}
		return "true"
	}
	for _, d := range []struct{ flag, here, there string }{
		{"--cluster-cidr", str(s.ClusterCIDR), str(cluster.ClusterCIDR)},
		{"--service-cidr", str(s.ServiceCIDR), str(cluster.ServiceCIDR)},
		{"--cluster-dns", s.ClusterDNS.String(), cluster.ClusterDNS.String()},
		{"--cluster-domain", s.ClusterDomain, cluster.ClusterDomain},
		{"--flannel-backend", s.FlannelBackend, cluster.FlannelBackend},
		{"--disable-network-policy", policy(s.NetworkPolicy), policy(cluster.NetworkPolicy)},
	} {
		if d.here != d.there {
			return fmt.Errorf("critical configuration value mismatch: %s is %s here and %s in the cluster: start this server with the cluster's value", d.flag, d.here, d.there)
		}
	}
	return nil
}
