package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the files under the TLS dir; other packages use these, never literal names.
const (
	ServerCA              = "server-ca"
	ClientCA              = "client-ca"
	RequestHeaderCA       = "request-header-ca"
	KubeletServingCA      = "kubelet-serving-ca"
	KubeletCABundle       = "kubelet-ca-bundle"
	APIServerServing      = "serving-kube-apiserver"
	KubeletServing        = "serving-kubelet"
	Admin                 = "client-admin"
	ControllerManager     = "client-controller"
	Scheduler             = "client-scheduler"
	APIServerKubelet      = "client-kube-apiserver"
	Kubelet               = "client-kubelet"
	KubeProxy             = "client-kube-proxy"
	AuthProxy             = "client-auth-proxy"
	Supervisor            = "client-supervisor"
	MetricsServer         = "client-metrics-server"
	MetricsServerServing  = "serving-metrics-server"
	SchedulerServing      = "serving-kube-scheduler"
	ControllerServing     = "serving-kube-controller-manager"
	ServiceLB             = "client-servicelb"
	Helm                  = "client-helm"
	ServiceAccountKeyFile = "service.key"
)

// AuthProxyName is the CN the apiserver accepts on request-header (aggregation) clients.
const AuthProxyName = "system:auth-proxy"

// SupervisorName is the identity the server's own helpers (join API, node-password cleanup)
// use: RBAC gives it only what they need, where the admin would give everything.
const SupervisorName = "system:outpost-supervisor"

// MetricsServerName is the in-process metrics-server's identity (RBAC in its manifest), and
// MetricsServerDNSName the name the aggregator checks its serving certificate for.
const (
	ServiceLBName        = "system:outpost-servicelb" // the in-process service load balancer
	HelmName             = "system:outpost-helm"      // the Helm controller: cluster admin by RBAC, removable with it
	MetricsServerName    = "system:metrics-server"
	MetricsServerDNSName = "metrics-server.kube-system.svc"
)

// ClusterSpec is what the certificates must name.
type ClusterSpec struct {
	Dir      string
	DNSNames []string
	IPs      []net.IP
	NodeName string
	NodeIP   net.IP
	// LeafLifetime of every leaf certificate; 0 means DefaultLeafLifetime.
	LeafLifetime time.Duration
}

// Bundle is the result: the CAs the rest of the server needs in memory.
type Bundle struct {
	Dir      string
	ServerCA *CA
	ClientCA *CA
	// KubeletCA signs kubelet serving certificates only. A CA of their own because agents
	// choose their node name and IP: from the server CA, which clients trust for the
	// apiserver, such a certificate could impersonate the apiserver.
	KubeletCA *CA
	// Renewed names the leaf certificates this call wrote.
	Renewed []string
}

// Path of a file in the bundle: Path(Admin, ".crt").
func (b *Bundle) Path(name, ext string) string { return filepath.Join(b.Dir, name+ext) }

// EnsureCluster creates whatever is missing or stale and keeps everything else.
func EnsureCluster(s ClusterSpec) (*Bundle, error) {
	_, err := os.Stat(filepath.Join(s.Dir, ServerCA+".crt"))
	newCluster := errors.Is(err, fs.ErrNotExist)
	serverCA, err := LoadOrCreateCA(s.Dir, ServerCA, "outpost-server-ca")
	if err != nil {
		return nil, err
	}
	// A new cluster's server CA never signs a kubelet certificate: kubelets are never
	// verified with it. (A server joining a cluster is given its CA: not new.)
	if newCluster {
		if err := recordKubeletCAOnly(s.Dir, serverCA.CertPEM); err != nil {
			return nil, err
		}
	}
	clientCA, err := LoadOrCreateCA(s.Dir, ClientCA, "outpost-client-ca")
	if err != nil {
		return nil, err
	}
	rhCA, err := LoadOrCreateCA(s.Dir, RequestHeaderCA, "outpost-request-header-ca")
	if err != nil {
		return nil, err
	}
	kubeletCA, err := LoadOrCreateCA(s.Dir, KubeletServingCA, "outpost-kubelet-serving-ca")
	if err != nil {
		return nil, err
	}
	for _, ca := range []*CA{serverCA, clientCA, rhCA, kubeletCA} {
		ca.LeafLifetime = s.LeafLifetime
	}
	// The apiserver trusts kubelet serving certificates from their own CA and, until every
	// node has renewed (TrustKubeletCAOnly), from the server CA that signed them before it
	// existed.
	if err := writeKubeletCABundle(s.Dir, kubeletCA, serverCA); err != nil {
		return nil, err
	}
	type leaf struct {
		ca   *CA
		name string
		spec Spec
	}
	leaves := []leaf{
		{serverCA, APIServerServing, Spec{CommonName: "kube-apiserver", DNSNames: s.DNSNames, IPs: s.IPs, Server: true}},
		{kubeletCA, KubeletServing, Spec{CommonName: s.NodeName, DNSNames: []string{s.NodeName, "localhost"},
			IPs: []net.IP{s.NodeIP, net.ParseIP("127.0.0.1")}, Server: true}},
		{clientCA, Admin, Spec{CommonName: "system:admin", Organization: []string{"system:masters"}}},
		{clientCA, ControllerManager, Spec{CommonName: "system:kube-controller-manager"}},
		{clientCA, Scheduler, Spec{CommonName: "system:kube-scheduler"}},
		// The apiserver calls kubelets (logs, exec, port-forward) as a cluster admin.
		{clientCA, APIServerKubelet, Spec{CommonName: "system:kube-apiserver", Organization: []string{"system:masters"}}},
		{clientCA, Kubelet, Spec{CommonName: "system:node:" + s.NodeName, Organization: []string{"system:nodes"}}},
		{clientCA, KubeProxy, Spec{CommonName: "system:kube-proxy"}},
		{rhCA, AuthProxy, Spec{CommonName: AuthProxyName}},
		{clientCA, Supervisor, Spec{CommonName: SupervisorName}},
		{clientCA, MetricsServer, Spec{CommonName: MetricsServerName}},
		{clientCA, ServiceLB, Spec{CommonName: ServiceLBName}},
		{clientCA, Helm, Spec{CommonName: HelmName}},
		{serverCA, MetricsServerServing, Spec{CommonName: MetricsServerDNSName, DNSNames: []string{MetricsServerDNSName}, Server: true}},
		// The scheduler and controller-manager serve health and metrics on loopback. Without
		// a certificate each made a self-signed RSA one at every start (0.1-0.5 s of CPU).
		{serverCA, SchedulerServing, Spec{CommonName: "kube-scheduler", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}},
		{serverCA, ControllerServing, Spec{CommonName: "kube-controller-manager", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}},
	}
	b := &Bundle{Dir: s.Dir, ServerCA: serverCA, ClientCA: clientCA, KubeletCA: kubeletCA}
	for _, l := range leaves {
		wrote, err := l.ca.Issue(s.Dir, l.name, l.spec)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", l.name, err)
		}
		if wrote {
			b.Renewed = append(b.Renewed, l.name)
		}
	}
	if err := ServiceAccountKey(filepath.Join(s.Dir, ServiceAccountKeyFile)); err != nil {
		return nil, err
	}
	return b, nil
}
