package apiserver

import (
	"strings"
	"testing"
)

func TestArgsSecurityDefaultsAndOverride(t *testing.T) {
	c := Config{TLSDir: "/t", ConfDir: "/c", EtcdEndpoint: "unix:///r/kine.sock", AdvertiseIP: "192.0.2.1",
		BindAddress: "0.0.0.0", Port: 6443, ServiceCIDR: "10.43.0.0/16", ClusterDomain: "cluster.local",
		Extra: []string{"service-node-port-range=20000-22767"}}
	got, err := Args(c)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(got, " ")
	for _, want := range []string{"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--authentication-config=/c/authentication.yaml", "--etcd-servers=unix:///r/kine.sock",
		"--kubelet-preferred-address-types=InternalIP", "--service-node-port-range=20000-22767"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %s in %s", want, all)
		}
	}
	if strings.Contains(all, "30000-32767") || strings.Contains(all, "anonymous-auth") {
		t.Errorf("override not applied or anonymous flag present: %s", all)
	}
}

func TestAuthConfigAnonymousPaths(t *testing.T) {
	got := AuthConfig([]string{"/v1-outpost/join", "/v1-outpost/cacerts"})
	want := "  - path: /healthz\n  - path: /v1-outpost/cacerts\n  - path: /v1-outpost/join\n"
	if !strings.HasSuffix(got, want) {
		t.Errorf("auth config:\n%s", got)
	}
	if strings.Contains(AuthConfig(nil), "v1-outpost") {
		t.Error("no handlers, yet extra anonymous paths")
	}
}

func TestReadyURLSkipsPolicyHooksOnlyWhenCurrent(t *testing.T) {
	c := Config{Port: 6443}
	if got := ReadyURL(c); got != "https://127.0.0.1:6443/readyz" {
		t.Errorf("first start: %s", got)
	}
	c.PolicyCurrent = true
	got := ReadyURL(c)
	for _, hook := range []string{"exclude=poststarthook/rbac/bootstrap-roles", "exclude=poststarthook/scheduling/bootstrap-system-priority-classes"} {
		if !strings.Contains(got, hook) {
			t.Errorf("policy current, %s missing: %s", hook, got)
		}
	}
	if strings.Count(got, "exclude=") != 2 {
		t.Errorf("only the two policy hooks may be skipped: %s", got)
	}
}
