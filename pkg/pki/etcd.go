package pki

import (
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// Files of the embedded etcd, under TLS/etcd: one CA of its own, so that no certificate of the
// Kubernetes CAs (which agents' joins use) opens the datastore.
const (
	EtcdDir    = "etcd"
	EtcdCA     = "ca"
	EtcdServer = "server" // client-facing listener (and the local client's identity)
	EtcdPeer   = "peer"   // server-to-server traffic: serves and dials with it
	EtcdClient = "client" // etcdctl, snapshots, member changes from another process
)

// EtcdSpec is what the etcd certificates must name.
type EtcdSpec struct {
	Dir          string // the TLS dir; files go under Dir/etcd
	NodeName     string
	NodeIP       net.IP
	LeafLifetime time.Duration
}

// EnsureEtcd creates the etcd CA (unless bootstrap data from the cluster wrote it) and this
// server's etcd certificates; current ones are kept. It returns the names it wrote.
func EnsureEtcd(s EtcdSpec) ([]string, error) {
	dir := filepath.Join(s.Dir, EtcdDir)
	ca, err := LoadOrCreateCA(dir, EtcdCA, "outpost-etcd-ca")
	if err != nil {
		return nil, err
	}
	ca.LeafLifetime = s.LeafLifetime
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if s.NodeIP != nil {
		ips = append(ips, s.NodeIP)
	}
	dns := []string{"localhost", s.NodeName}
	var wrote []string
	for _, l := range []struct {
		name string
		spec Spec
	}{
		{EtcdServer, Spec{CommonName: "etcd-server-" + s.NodeName, DNSNames: dns, IPs: ips, Server: true, Client: true}},
		{EtcdPeer, Spec{CommonName: "etcd-peer-" + s.NodeName, DNSNames: dns, IPs: ips, Server: true, Client: true}},
		{EtcdClient, Spec{CommonName: "etcd-client"}},
	} {
		w, err := ca.Issue(dir, l.name, l.spec)
		if err != nil {
			return nil, fmt.Errorf("etcd certificate %s: %w", l.name, err)
		}
		if w {
			wrote = append(wrote, EtcdDir+"/"+l.name)
		}
	}
	return wrote, nil
}
