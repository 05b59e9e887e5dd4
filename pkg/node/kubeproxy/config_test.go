package kubeproxy

import (
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRender(t *testing.T) {
	for _, masq := range []bool{false, true} {
		b, err := Render(Config{NodeName: "n", Kubeconfig: "/k", ClusterCIDR: "10.42.0.0/16", MasqueradeAll: masq})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Mode             string
			Conntrack        struct{ MaxPerCore *int32 }
			Iptables         struct{ MasqueradeAll bool }
			HostnameOverride string
		}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Mode != "iptables" || m.Conntrack.MaxPerCore == nil || *m.Conntrack.MaxPerCore != 0 ||
			m.Iptables.MasqueradeAll != masq || m.HostnameOverride != "n" {
			t.Errorf("bad config %+v\n%s", m, b)
		}
	}
}
