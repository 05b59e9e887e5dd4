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
