// Package server assembles `outpost server` from its components: the datastore, the control
// plane, the deploy controller and the node (containerd, kubelet, kube-proxy, CNI).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpostk8s/outpost/manifests"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/control/apiserver"
	"github.com/outpostk8s/outpost/pkg/control/certs"
	"github.com/outpostk8s/outpost/pkg/control/controllermanager"
	"github.com/outpostk8s/outpost/pkg/control/deploy"
	"github.com/outpostk8s/outpost/pkg/control/nodepassword"
	"github.com/outpostk8s/outpost/pkg/control/scheduler"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/node/cni"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/node/flannel"
	"github.com/outpostk8s/outpost/pkg/node/images"
	"github.com/outpostk8s/outpost/pkg/node/kubelet"
	"github.com/outpostk8s/outpost/pkg/node/kubeproxy"
	"github.com/outpostk8s/outpost/pkg/node/sysctl"
	"github.com/outpostk8s/outpost/pkg/node/upstream"
	"github.com/outpostk8s/outpost/pkg/payload"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
	"github.com/outpostk8s/outpost/pkg/version"
)

// Server is one run of `outpost server`.
type Server struct {
	Cfg     *config.Config
	Log     *slog.Logger
	Out     *logging.Out
	Started time.Time
	// Joined is set on an agent: the credentials and settings the server gave it.
	Joined *join.Result
	mgr    *component.Manager
	pki    *pki.Bundle
	token  *token.File
}

// Run prepares the data dir, starts every component and blocks until ctx ends or a component
// dies; it then stops everything in reverse.
func (s *Server) Run(ctx context.Context) error {
	c := s.Cfg
	for _, w := range sysctl.Ensure("/") {
		s.Log.Warn(w)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	binDir, err := payload.Extract(payload.Assets(), c.Dirs.Payload(), self)
	if err != nil {
		return err
	}
	var phases [][]component.Component
	if s.Joined != nil {
		if err := s.writeJoined(); err != nil {
			return err
		}
		if phases, err = s.nodeComponents(binDir); err != nil {
			return err
		}
		balancer, err := s.loadBalancer()
		if err != nil {
			return err
		}
		phases[0] = append([]component.Component{balancer, s.agentRenewer()}, phases[0]...)
	} else {
		if err := s.writeCredentials(); err != nil {
			return err
		}
		if _, err = token.Ensure(s.TokenFile(), s.pki.ServerCA.CertPEM, c.Token, func(p string, b []byte) error { return pki.WriteFile(p, b, 0o600) }); err != nil {
			return err
		}
		s.token = &token.File{Path: s.TokenFile()}
		if phases, err = s.components(binDir); err != nil {
			return err
		}
	}
	s.mgr = &component.Manager{Phases: phases, ReadyTimeout: 3 * time.Minute, Log: s.Log}
	if err := s.mgr.Start(ctx); err != nil {
		return err
	}
	go s.announceReady(ctx)
	var runErr error
	select {
	case <-ctx.Done():
		s.Log.Info("stopping")
	case err := <-s.mgr.Died():
		runErr = err
		s.Log.Error("component died; stopping", "err", err)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
	defer cancel()
	if err := s.mgr.Stop(stopCtx); err != nil {
		s.Log.Warn("stop", "err", err)
	}
	return runErr
}

// writeCredentials creates the PKI and every kubeconfig; existing valid files are kept.
func (s *Server) writeCredentials() error {
	b, err := pki.EnsureCluster(s.clusterSpec())
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	s.pki = b
	return s.writeKubeconfigs()
}

func (s *Server) clusterSpec() pki.ClusterSpec {
	c := s.Cfg
	return pki.ClusterSpec{Dir: c.Dirs.TLS(), DNSNames: c.SANs.DNS, IPs: c.SANs.IPs,
		NodeName: c.NodeName, NodeIP: c.NodeIP, LeafLifetime: c.LeafLifetime}
}

// writeKubeconfigs: the in-process clients' name the certificate files, which they reload
// when renewed; the admin kubeconfig for people embeds its certificate (it is copied to
// other machines) and is rewritten when that is renewed.
func (s *Server) writeKubeconfigs() error {
	c := s.Cfg
	url := fmt.Sprintf("https://127.0.0.1:%d", c.HTTPSPort)
	caFile := filepath.Join(c.Dirs.TLS(), pki.ServerCA+".crt")
	for _, k := range []struct{ path, name string }{
		{s.cred("admin"), pki.Admin},
		{s.cred("controller"), pki.ControllerManager},
		{s.cred("scheduler"), pki.Scheduler},
		{s.cred("supervisor"), pki.Supervisor},
		{c.Dirs.KubeletKubeconfig(), pki.Kubelet},
		{c.Dirs.KubeProxyKubeconfig(), pki.KubeProxy},
	} {
		if err := pki.KubeconfigFiles(k.path, url, caFile, c.Dirs.TLS(), k.name); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o700); err != nil {
		return fmt.Errorf("kubeconfig dir: %w", err)
	}
	return pki.Kubeconfig(c.Kubeconfig, url, s.pki.ServerCA.CertPEM, c.Dirs.TLS(), pki.Admin, c.KubeconfigMode)
}

// renewer re-issues the server's certificates that are due while it runs.
func (s *Server) renewer() *certs.Renewer {
	return &certs.Renewer{Dirs: []string{s.Cfg.Dirs.TLS()}, Interval: pki.CheckInterval(s.leafLifetime()),
		Log: s.Log.With("component", "certificates"),
		Renew: func() ([]string, error) {
			b, err := pki.EnsureCluster(s.clusterSpec())
			if err != nil {
				return nil, err
			}
			return b.Renewed, nil
		},
		Written: s.writeKubeconfigs}
}

func (s *Server) leafLifetime() time.Duration {
	if s.Cfg.LeafLifetime > 0 {
		return s.Cfg.LeafLifetime
	}
	return pki.DefaultLeafLifetime
}

// TokenFile holds the cluster join token.
func (s *Server) TokenFile() string { return s.Cfg.Dirs.TokenFile() }

func (s *Server) cred(name string) string {
	return filepath.Join(s.Cfg.Dirs.Cred(), name+".kubeconfig")
}

func (s *Server) client(kubeconfig string) (*kubernetes.Clientset, dynamic.Interface, discovery.CachedDiscoveryInterface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("client from %s: %w", kubeconfig, err)
	}
	rc.UserAgent = "outpost/" + version.Outpost
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, nil, err
	}
	return cs, dyn, memory.NewMemCacheClient(cs.Discovery()), nil
}

func (s *Server) components(binDir string) ([][]component.Component, error) {
	c := s.Cfg
	kine := datastore.New(datastore.Config{Endpoint: c.Datastore.Endpoint, DBFile: c.Dirs.DBFile(),
		Socket: c.Dirs.KineSocket(), CompactInterval: c.Datastore.CompactInterval,
		CompactBatch: c.Datastore.CompactBatch, PollInterval: c.Datastore.PollInterval})
	adminClient, dyn, disc, err := s.client(s.cred("admin"))
	if err != nil {
		return nil, err
	}
	supervisor, _, _, err := s.client(s.cred("supervisor"))
	if err != nil {
		return nil, err
	}
	handlers, anonymous := s.joinHandlers(supervisor)
	api, err := apiserver.New(apiserver.Config{Handlers: handlers, Anonymous: anonymous, TLSDir: c.Dirs.TLS(), ConfDir: filepath.Join(c.Dirs.Server(), "etc"),
		EtcdEndpoint: kine.EtcdEndpoint(), AdvertiseIP: c.NodeIP.String(), BindAddress: c.BindAddress,
		Port: c.HTTPSPort, ServiceCIDR: c.ServiceCIDR.String(), ClusterDomain: c.ClusterDomain,
		Verbosity: c.Verbosity, Extra: c.Extra.APIServer, EncryptionConfig: s.encryptionConfigPath()})
	if err != nil {
		return nil, err
	}
	sched, err := scheduler.New(scheduler.Config{Kubeconfig: s.cred("scheduler"), Extra: c.Extra.Scheduler})
	if err != nil {
		return nil, err
	}
	cm, err := controllermanager.New(controllermanager.Config{Kubeconfig: s.cred("controller"), TLSDir: c.Dirs.TLS(),
		ClusterCIDR: c.ClusterCIDR.String(), ServiceCIDR: c.ServiceCIDR.String(), Extra: c.Extra.ControllerManager})
	if err != nil {
		return nil, err
	}
	dep := &deploy.Controller{Dir: c.Dirs.Manifests(), Log: s.Log.With("component", "deploy"),
		Applier:  deploy.Applier{Client: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc)},
		Embedded: manifests.FS, Disabled: c.Disabled,
		Values: deploy.Values{ClusterDNS: c.ClusterDNS.String(), ClusterDomain: c.ClusterDomain,
			CoreDNSImage: version.CoreDNSImage, PauseImage: version.PauseImage}}

	control := []component.Component{sched, cm, dep, s.renewer(),
		&nodepassword.Cleaner{Client: supervisor, Log: s.Log.With("component", "node-password"), Keep: s.ownNode()}}
	first := []component.Component{kine}
	if p := s.encryptionConfigPath(); p != "" {
		log := s.Log.With("component", "secrets-encryption")
		first = append(first, &encryptionKey{path: p, provider: c.SecretsProvider, log: log})
		control = append(control, &reencrypt{client: adminClient, socket: c.Dirs.KineSocket(), log: log})
	}
	if c.DisableAgent {
		return [][]component.Component{first, {api}, control}, nil
	}
	node, err := s.nodeComponents(binDir)
	if err != nil {
		return nil, err
	}
	// containerd starts beside the scheduler and controller-manager; the server's own node
	// claims its name once deploy applied the RBAC rules the supervisor identity needs.
	node[1] = append(node[1], &claimNodeName{passwords: join.Passwords{Client: supervisor}, node: c.NodeName, file: c.NodePasswordFile,
		log: s.Log.With("component", "node-password")})
	return append([][]component.Component{first, {api}, append(control, node[0]...)}, node[1:]...), nil
}

// nodeComponents are this node's: the same on a server and an agent.
func (s *Server) nodeComponents(binDir string) ([][]component.Component, error) {
	c := s.Cfg
	tlsDir := c.Dirs.TLS()
	if s.Joined != nil {
		tlsDir = c.Dirs.AgentTLS()
	}
	nodeClient, _, _, err := s.client(c.Dirs.KubeletKubeconfig())
	if err != nil {
		return nil, err
	}
	gpu, err := s.prepareGPU(nodeClient)
	if err != nil {
		return nil, err
	}
	cc := containerd.Config{Root: c.Dirs.ContainerdRoot(), State: c.Dirs.RuntimeContainerd(),
		Socket: c.Dirs.ContainerdSocket(), ConfigFile: c.Dirs.ContainerdConfig(), BinDir: binDir,
		CNIConfDir: c.Dirs.CNIConfDir(), SandboxImage: version.PauseImage, CgroupV2: c.Host.CgroupV2,
		RestrictOOMScoreAdj: c.Host.OOMScoreAdjRestricted, Debug: c.Verbosity >= 4}
	if err := s.gpuContainerd(gpu, &cc); err != nil {
		return nil, err
	}
	ctrd := containerd.New(cc, s.Out)
	imgs := &imageImport{im: images.Importer{Ctr: filepath.Join(binDir, "ctr"), Socket: c.Dirs.ContainerdSocket(), Run: images.Exec},
		dir: c.Dirs.Images(), log: s.Log.With("component", "images")}

	kcfg := kubelet.Config{NodeName: c.NodeName, NodeIP: c.NodeIP, ConfigFile: c.Dirs.KubeletConfig(),
		Kubeconfig: c.Dirs.KubeletKubeconfig(), ClientCAFile: filepath.Join(tlsDir, pki.ClientCA+".crt"),
		TLSCertFile: filepath.Join(tlsDir, pki.KubeletServing+".crt"), TLSKeyFile: filepath.Join(tlsDir, pki.KubeletServing+".key"),
		RuntimeSocket: c.Dirs.ContainerdSocket(), ClusterDNS: c.ClusterDNS, ClusterDomain: c.ClusterDomain,
		ResolvConf: kubelet.ResolvConf("/"), CgroupV2: c.Host.CgroupV2, Verbosity: c.Verbosity, Extra: c.Extra.Kubelet}
	if err := writeRendered(c.Dirs.KubeletConfig(), func() ([]byte, error) { return kubelet.Render(kcfg) }); err != nil {
		return nil, err
	}
	kargv, err := kubelet.Args(kcfg)
	if err != nil {
		return nil, fmt.Errorf("kubelet args: %w", err)
	}
	pcfg := kubeproxy.Config{NodeName: c.NodeName, ConfigFile: c.Dirs.KubeProxyConfig(), Kubeconfig: c.Dirs.KubeProxyKubeconfig(),
		ClusterCIDR: c.ClusterCIDR.String(), MasqueradeAll: !c.Host.BrNetfilter, Verbosity: c.Verbosity, Extra: c.Extra.KubeProxy}
	if err := writeRendered(c.Dirs.KubeProxyConfig(), func() ([]byte, error) { return kubeproxy.Render(pcfg) }); err != nil {
		return nil, err
	}
	pargv, err := kubeproxy.Args(pcfg)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy args: %w", err)
	}
	ccfg := cni.Config{ConfDir: c.Dirs.CNIConfDir(), IPAMDir: filepath.Join(c.Dirs.Agent(), "cni", "networks"), NodeName: c.NodeName}
	last := []component.Component{}
	if c.FlannelBackend != "none" {
		iface, _, err := flannel.Interface(c.FlannelIface, c.NodeIP)
		if err != nil {
			return nil, err
		}
		ccfg.MTU, ccfg.ExternalMasq = iface.MTU-flannel.Overhead(c.FlannelBackend), true
		last = append(last, flannel.New(flannel.Config{NodeName: c.NodeName, NodeIP: c.NodeIP, Iface: c.FlannelIface,
			Backend: c.FlannelBackend, ClusterCIDR: c.ClusterCIDR.String(), Kubeconfig: c.Dirs.KubeletKubeconfig(),
			Dir: filepath.Join(c.Dirs.Agent(), "etc", "flannel"), Log: s.Log.With("component", "flannel")}))
	}
	last = append(last, cni.New(ccfg, nodeClient))
	if gpu != nil {
		last = append(last, gpu)
	}
	return [][]component.Component{
		{ctrd},
		{imgs},
		{upstream.Kubelet(kargv), upstream.KubeProxy(pargv)},
		last,
	}, nil
}
func writeRendered(path string, render func() ([]byte, error)) error {
	b, err := render()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return pki.WriteFile(path, b, 0o600)
}

// ListenCheck fails when addr:port is taken, naming the flag that moves it.
func ListenCheck(addr string, port int, owner, fix string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
	if err != nil {
		return fmt.Errorf("port %d (%s) is already in use by another program: stop it, or %s", port, owner, fix)
	}
	return l.Close()
}
