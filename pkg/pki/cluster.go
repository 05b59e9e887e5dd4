package pki

import (
	"fmt"
	"net"
	"path/filepath"
)

// Names of the files under the TLS dir; other packages use these, never literal names.
const (
	ServerCA              = "server-ca"
	ClientCA              = "client-ca"
	RequestHeaderCA       = "request-header-ca"
	APIServerServing      = "serving-kube-apiserver"
	KubeletServing        = "serving-kubelet"
	Admin                 = "client-admin"
	ControllerManager     = "client-controller"
	Scheduler             = "client-scheduler"
	APIServerKubelet      = "client-kube-apiserver"
	Kubelet               = "client-kubelet"
	KubeProxy             = "client-kube-proxy"
	AuthProxy             = "client-auth-proxy"
	ServiceAccountKeyFile = "service.key"
)

// AuthProxyName is the CN the apiserver accepts on request-header (aggregation) clients.
const AuthProxyName = "system:auth-proxy"

// ClusterSpec is what the certificates must name.
type ClusterSpec struct {
	Dir      string
	DNSNames []string
	IPs      []net.IP
	NodeName string
	NodeIP   net.IP
}

// Bundle is the result: the CAs the rest of the server needs in memory.
type Bundle struct {
	Dir      string
	ServerCA *CA
	ClientCA *CA
}

// Path of a file in the bundle: Path(Admin, ".crt").
func (b *Bundle) Path(name, ext string) string { return filepath.Join(b.Dir, name+ext) }

// EnsureCluster creates whatever is missing or stale and keeps everything else.
func EnsureCluster(s ClusterSpec) (*Bundle, error) {
	serverCA, err := LoadOrCreateCA(s.Dir, ServerCA, "outpost-server-ca")
	if err != nil {
		return nil, err
	}
	clientCA, err := LoadOrCreateCA(s.Dir, ClientCA, "outpost-client-ca")
	if err != nil {
		return nil, err
	}
	rhCA, err := LoadOrCreateCA(s.Dir, RequestHeaderCA, "outpost-request-header-ca")
	if err != nil {
		return nil, err
	}
	type leaf struct {
		ca   *CA
		name string
		spec Spec
	}
	leaves := []leaf{
		{serverCA, APIServerServing, Spec{CommonName: "kube-apiserver", DNSNames: s.DNSNames, IPs: s.IPs, Server: true}},
		{serverCA, KubeletServing, Spec{CommonName: s.NodeName, DNSNames: []string{s.NodeName, "localhost"},
			IPs: []net.IP{s.NodeIP, net.ParseIP("127.0.0.1")}, Server: true}},
		{clientCA, Admin, Spec{CommonName: "system:admin", Organization: []string{"system:masters"}}},
		{clientCA, ControllerManager, Spec{CommonName: "system:kube-controller-manager"}},
		{clientCA, Scheduler, Spec{CommonName: "system:kube-scheduler"}},
		// The apiserver calls kubelets (logs, exec, port-forward) as a cluster admin.
		{clientCA, APIServerKubelet, Spec{CommonName: "system:kube-apiserver", Organization: []string{"system:masters"}}},
		{clientCA, Kubelet, Spec{CommonName: "system:node:" + s.NodeName, Organization: []string{"system:nodes"}}},
		{clientCA, KubeProxy, Spec{CommonName: "system:kube-proxy"}},
		{rhCA, AuthProxy, Spec{CommonName: AuthProxyName}},
	}
	for _, l := range leaves {
		if err := l.ca.Issue(s.Dir, l.name, l.spec); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", l.name, err)
		}
	}
	if err := ServiceAccountKey(filepath.Join(s.Dir, ServiceAccountKeyFile)); err != nil {
		return nil, err
	}
	return &Bundle{Dir: s.Dir, ServerCA: serverCA, ClientCA: clientCA}, nil
}
