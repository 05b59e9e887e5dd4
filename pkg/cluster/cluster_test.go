package cluster

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

func settings() Settings {
	_, pods, _ := net.ParseCIDR("10.42.0.0/16")
	_, svcs, _ := net.ParseCIDR("10.43.0.0/16")
	return Settings{ClusterCIDR: pods, ServiceCIDR: svcs, ClusterDNS: net.ParseIP("10.43.0.10"), ClusterDomain: "cluster.local", FlannelBackend: "vxlan"}
}

func TestRoundTripAndVersion(t *testing.T) {
	b, err := json.Marshal(settings())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"version":1`) || !strings.Contains(string(b), `"clusterCIDR":"10.42.0.0/16"`) {
		t.Errorf("wire form %s", b)
	}
	var got Settings
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ClusterCIDR.String() != "10.42.0.0/16" || !got.ClusterDNS.Equal(net.ParseIP("10.43.0.10")) || got.FlannelBackend != "vxlan" {
		t.Errorf("round trip %+v", got)
	}
	if got.NetworkPolicy {
		t.Errorf("NetworkPolicy off did not survive the round trip: %s", b)
	}
	on := settings()
	on.NetworkPolicy = true
	b, _ = json.Marshal(on)
	if err := json.Unmarshal(b, &got); err != nil || !got.NetworkPolicy {
		t.Errorf("NetworkPolicy on: %v %s", err, b)
	}
	// A server before versions sent none: that is version 1. A server before NetworkPolicy
	// sent no switch: the agent enforces policies, the default.
	old := `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.43.0.10","clusterDomain":"cluster.local","flannelBackend":"host-gw"}`
	if err := json.Unmarshal([]byte(old), &got); err != nil || got.FlannelBackend != "host-gw" || !got.NetworkPolicy {
		t.Errorf("unversioned answer: %v %+v", err, got)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"newer version": `{"version":2,"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.43.0.10","clusterDomain":"cluster.local","flannelBackend":"vxlan"}`,
		"bad CIDR":      `{"clusterCIDR":"10.42.0.0/33","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.43.0.10","clusterDomain":"cluster.local","flannelBackend":"vxlan"}`,
		"bad DNS":       `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"x","clusterDomain":"cluster.local","flannelBackend":"vxlan"}`,
		"DNS outside":   `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.44.0.10","clusterDomain":"cluster.local","flannelBackend":"vxlan"}`,
		"bad domain":    `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.43.0.10","clusterDomain":"Cluster..local","flannelBackend":"vxlan"}`,
		"bad backend":   `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","clusterDNS":"10.43.0.10","clusterDomain":"cluster.local","flannelBackend":"wireguard-x"}`,
	} {
		var s Settings
		if err := json.Unmarshal([]byte(body), &s); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// A server whose settings differ from the cluster's is told which one and both values.
func TestMismatch(t *testing.T) {
	parse := func(cidr string) *net.IPNet { _, n, _ := net.ParseCIDR(cidr); return n }
	base := Settings{ClusterCIDR: parse("10.42.0.0/16"), ServiceCIDR: parse("10.43.0.0/16"), ClusterDNS: net.ParseIP("10.43.0.10"),
		ClusterDomain: "cluster.local", FlannelBackend: "vxlan", NetworkPolicy: true}
	if err := base.Mismatch(base); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.ServiceCIDR = parse("10.44.0.0/16") }, "--service-cidr is 10.44.0.0/16 here and 10.43.0.0/16 in the cluster"},
		{func(s *Settings) { s.ClusterCIDR = parse("10.52.0.0/16") }, "--cluster-cidr is 10.52.0.0/16 here and 10.42.0.0/16"},
		{func(s *Settings) { s.ClusterDNS = net.ParseIP("10.43.0.53") }, "--cluster-dns is 10.43.0.53 here and 10.43.0.10"},
		{func(s *Settings) { s.ClusterDomain = "edge.local" }, "--cluster-domain is edge.local here and cluster.local"},
		{func(s *Settings) { s.FlannelBackend = "host-gw" }, "--flannel-backend is host-gw here and vxlan"},
		{func(s *Settings) { s.NetworkPolicy = false }, "--disable-network-policy is true here and false"},
	} {
		s := base
		c.mod(&s)
		if err := s.Mismatch(base); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "critical configuration value mismatch") {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
