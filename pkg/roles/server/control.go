package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"path/filepath"
	"strings"
	"time"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/outpostk8s/outpost/manifests"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/control/apiserver"
	"github.com/outpostk8s/outpost/pkg/control/bootstrapdata"
	"github.com/outpostk8s/outpost/pkg/control/controllermanager"
	"github.com/outpostk8s/outpost/pkg/control/deploy"
	"github.com/outpostk8s/outpost/pkg/control/etcdmember"
	"github.com/outpostk8s/outpost/pkg/control/helm"
	"github.com/outpostk8s/outpost/pkg/control/kubeletca"
	"github.com/outpostk8s/outpost/pkg/control/leader"
	"github.com/outpostk8s/outpost/pkg/control/metricsserver"
	"github.com/outpostk8s/outpost/pkg/control/nodeclaim"
	"github.com/outpostk8s/outpost/pkg/control/nodepassword"
	"github.com/outpostk8s/outpost/pkg/control/policymarker"
	"github.com/outpostk8s/outpost/pkg/control/runtimeclass"
	"github.com/outpostk8s/outpost/pkg/control/scheduler"
	"github.com/outpostk8s/outpost/pkg/control/secretsencryption"
	"github.com/outpostk8s/outpost/pkg/control/servicelb"
	"github.com/outpostk8s/outpost/pkg/control/sharedinformers"
	"github.com/outpostk8s/outpost/pkg/control/snapshotter"
	"github.com/outpostk8s/outpost/pkg/control/static"
	"github.com/outpostk8s/outpost/pkg/control/tokensyncer"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/serverjoin"
	"github.com/outpostk8s/outpost/pkg/snapshot"
	"github.com/outpostk8s/outpost/pkg/tokensync"
	"github.com/outpostk8s/outpost/pkg/version"
)

// clients are the server's own API clients, built from the kubeconfigs Prepare wrote.
type clients struct {
	adminCfg   *rest.Config
	admin      kubernetes.Interface
	supervisor kubernetes.Interface
	dynamic    dynamic.Interface
	discovery  discovery.CachedDiscoveryInterface
}

// controlPlane adds the control plane to p: the datastore (and the Secrets key); the
// apiserver with the join API; then the scheduler, controller-manager, deploy, certificate
// renewal, node-password cleanup, the kubelet CA bundle's check (and Secrets re-encryption).
// Outpost's cluster-wide controllers are leader-only: on a shared datastore one server runs
// them, under the Lease.
func (s *Server) controlPlane(p *component.Plan) error {
	c := s.Cfg.Control
	cl, err := s.clients()
	if err != nil {
		return err
	}
	var kine datastoreComponent = datastore.New(datastore.Config{Endpoint: c.Datastore.Endpoint, TLS: kineTLS(c.Datastore), DBFile: c.Dirs.DBFile(),
		Socket: c.Dirs.KineSocket(), CompactInterval: c.Datastore.CompactInterval,
		CompactBatch: c.Datastore.CompactBatch, CompactTimeout: c.Datastore.CompactTimeout, PollInterval: c.Datastore.PollInterval,
		Guard: s.Guard})
	var source snapshot.Source = datastore.SQLiteSource{File: c.Dirs.DBFile()}
	handlers, anonymous := s.joinHandlers(cl.supervisor)
	handlers[static.Prefix] = &static.Handler{Dir: c.Dirs.Static()}
	if c.Etcd {
		kine = s.etcdDatastore()
		source = datastore.EtcdSource{Endpoint: kine.EtcdEndpoint()}
		h := s.serverJoinHandler(c.Dirs.KineSocket(), cl.supervisor)
		handlers[serverjoin.BootstrapPath], handlers[serverjoin.MemberPath] = h, h
		anonymous = append(anonymous, serverjoin.BootstrapPath, serverjoin.MemberPath)
	}
	api, err := apiserver.New(apiserver.Config{Handlers: handlers, Anonymous: anonymous, TLSDir: c.Dirs.TLS(), ConfDir: c.Dirs.APIServerConf(),
		EtcdEndpoint: kine.EtcdEndpoint(), AdvertiseIP: c.NodeIP.String(), BindAddress: c.BindAddress,
		Port: c.HTTPSPort, ServiceCIDR: c.Cluster.ServiceCIDR.String(), ClusterDomain: c.Cluster.ClusterDomain,
		Verbosity: c.Verbosity, Extra: c.Args.APIServer, EncryptionConfig: s.encryptionConfigPath(), PolicyCurrent: s.policyCurrent,
		Identity: c.NodeName})
	if err != nil {
		return err
	}
	shared := c.Datastore.Endpoint != "" || c.Etcd // other servers may run on it
	sched, err := scheduler.New(scheduler.Config{Kubeconfig: c.Dirs.SchedulerKubeconfig(), TLSDir: c.Dirs.TLS(), LeaderElect: shared, Extra: c.Args.Scheduler})
	if err != nil {
		return err
	}
	cm, err := controllermanager.New(controllermanager.Config{Kubeconfig: c.Dirs.ControllerKubeconfig(), TLSDir: c.Dirs.TLS(),
		ClusterCIDR: c.Cluster.ClusterCIDR.String(), ServiceCIDR: c.Cluster.ServiceCIDR.String(), LeaderElect: shared, Extra: c.Args.ControllerManager})
	if err != nil {
		return err
	}
	dep := &deploy.Deploy{Dir: c.Dirs.Manifests(), Log: s.Log.With("component", "deploy"),
		Applier:  deploy.Applier{Client: cl.dynamic, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(cl.discovery)},
		Embedded: manifests.FS, Disabled: c.Disabled,
		// The RBAC rules the server's own node waits for go first: its name claim (before the
		// kubelet starts), flannel, and the policy controller (its first sync ends the start).
		First: []string{"join.yaml", "flannel-rbac.yaml", "network-policy.yaml"},
		Values: deploy.Values{ClusterDNS: c.Cluster.ClusterDNS.String(), ClusterDomain: c.Cluster.ClusterDomain,
			CoreDNSImage: version.CoreDNSImage, PauseImage: version.PauseImage,
			MetricsAddress: c.NodeIP.String(), MetricsAddressType: addressType(c.NodeIP), MetricsPort: metricsserver.Port,
			ServerCABase64: base64.StdEncoding.EncodeToString(s.pki.ServerCA.CertPEM),
			LocalPathImage: version.LocalPathImage, StoragePath: c.StoragePath}}

	// One informer factory per identity that several components watch the API as: one cache
	// of each resource (the Nodes) in the process, not one per component.
	adminInformers := sharedinformers.New("admin", cl.admin)

	const ctl = component.StageControllers
	p.Add(component.StageDatastore, kine)
	if pth := s.encryptionConfigPath(); pth != "" { // the key, before the apiserver reads it
		p.Add(component.StageDatastore, &secretsencryption.Key{Path: pth, Provider: c.SecretsProvider, Log: s.Log.With("component", "secrets-encryption")})
	}
	p.Add(component.StageAPI, api)
	p.Add(ctl, &policymarker.Marker{Path: c.Dirs.PolicyMarker(), Record: s.policyRecord(), Current: s.policyCurrent})
	p.Add(ctl, sched)
	p.Add(ctl, cm)
	// Before its users, the elected group (in deploy's place) included: it stops after them.
	p.Add(ctl, adminInformers)
	// The manifests apply in the background (a few seconds on two cores): the node's image
	// import need not wait for them, and the node-password claim retries until its RBAC is in.
	p.Add(ctl, dep, component.NotGating(), component.LeaderOnly())
	p.Add(ctl, s.renewer())
	p.Add(ctl, &nodepassword.NodePassword{Client: cl.supervisor, Log: s.Log.With("component", "node-password"), Keep: c.OwnNode}, component.LeaderOnly())
	p.Add(ctl, &kubeletca.Trust{Client: cl.supervisor, Dir: c.Dirs.TLS(), Log: s.Log.With("component", "kubelet-ca-bundle")})
	if !c.Disabled["metrics-server"] {
		tls := func(name, ext string) string { return filepath.Join(c.Dirs.TLS(), name+ext) }
		ms, err := metricsserver.New(metricsserver.Config{BindIP: c.NodeIP, Kubeconfig: c.Dirs.MetricsServerKubeconfig(),
			ServingCert: tls(pki.MetricsServerServing, ".crt"), ServingKey: tls(pki.MetricsServerServing, ".key"),
			KubeletCA: tls(pki.KubeletCABundle, ".crt"), ClientCert: tls(pki.MetricsServer, ".crt"), ClientKey: tls(pki.MetricsServer, ".key"),
			RequestHeaderCA: tls(pki.RequestHeaderCA, ".crt"), AllowedNames: []string{pki.AuthProxyName}, ClientCA: tls(pki.ClientCA, ".crt"),
			Log: s.Log.With("component", "metrics-server")})
		if err != nil {
			return err
		}
		p.Add(ctl, ms)
	}
	if !c.Disabled["servicelb"] {
		lbClient, err := kubeclient.New(c.Dirs.ServiceLBKubeconfig())
		if err != nil {
			return err
		}
		p.Add(ctl, &servicelb.Controller{Client: lbClient, Reserved: servicelb.Reserved(c.HTTPSPort, c.Etcd, c.ServiceLBReserved),
			Log: s.Log.With("component", "servicelb")}, component.LeaderOnly())
	}
	if !c.DisableHelm {
		// Its own identity, system:outpost-helm (cluster admin by helm-controller.yaml, which
		// --disable-helm-controller removes), not the server's admin.
		hcfg, err := kubeclient.Config(c.Dirs.HelmKubeconfig())
		if err != nil {
			return err
		}
		hcs, err := kubernetes.NewForConfig(hcfg)
		if err != nil {
			return err
		}
		dyn, err := dynamic.NewForConfig(hcfg)
		if err != nil {
			return err
		}
		ext, err := apiextclient.NewForConfig(hcfg)
		if err != nil {
			return err
		}
		p.Add(ctl, &helm.Controller{Client: hcs, Dynamic: dyn, APIExt: ext, Resync: c.HelmResync, Log: s.Log.With("component", "helm-controller"),
			Releaser: &helm.Releaser{Kubeconfig: c.Dirs.HelmKubeconfig(), CacheDir: c.Dirs.HelmCache(), Log: s.Log.With("component", "helm"),
				API:    strings.TrimPrefix(hcfg.Host, "https://"),
				APITLS: helm.TLSFiles{CA: c.Dirs.ServerCAFile(), Cert: filepath.Join(c.Dirs.TLS(), pki.Helm+".crt"), Key: filepath.Join(c.Dirs.TLS(), pki.Helm+".key")}}},
			component.LeaderOnly())
	}
	p.Add(ctl, &runtimeclass.Controller{Client: cl.admin, Informers: adminInformers, Legacy: c.Dirs.RuntimeClassesManifest(),
		Log: s.Log.With("component", "gpu-runtimeclasses")}, component.LeaderOnly())
	if s.encryptionConfigPath() != "" {
		p.Add(ctl, &secretsencryption.ReEncrypt{Client: cl.admin, Socket: c.Dirs.KineSocket(), Log: s.Log.With("component", "secrets-encryption")})
	}
	if shared {
		// The node name plus a random part, as upstream does: two servers that share a name
		// must not both think they hold the Lease.
		id := make([]byte, 4)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		identity, log := c.NodeName+"_"+hex.EncodeToString(id), s.Log.With("component", "leader")
		p.Elect = func(cs []component.Component) component.Component {
			return &leader.Elected{Lease: "outpost-controllers", Identity: identity, Client: cl.admin, Log: log, Components: cs}
		}
	}
	if c.Etcd {
		socket := c.Dirs.KineSocket()
		p.Add(ctl, &etcdmember.Remover{Client: cl.admin, Informers: adminInformers, Own: c.NodeName, Log: s.Log.With("component", "etcd-member-remover"),
			Remove: func(ctx context.Context, name string) (bool, error) {
				cli, err := datastore.Client("unix://" + socket)
				if err != nil {
					return false, err
				}
				defer cli.Close()
				return datastore.RemoveMember(ctx, cli, name)
			}})
	}
	keeper := &bootstrapdata.Keeper{ServerDir: c.Dirs.ServerDir(), Tokens: s.token, Endpoint: kine.EtcdEndpoint(),
		Shared: shared, Settings: &c.Cluster, Log: s.Log.With("component", "bootstrap-data")}
	p.Add(ctl, keeper)
	p.Add(ctl, &tokensyncer.Syncer{Endpoint: kine.EtcdEndpoint(), Keeper: keeper, Log: s.Log.With("component", "token-sync"),
		Server: tokensync.Server{Name: c.NodeName, Now: time.Now, Files: tokensync.Files{Cluster: s.token, Agent: s.agentToken,
			Write: func(p string, b []byte) error { return pki.WriteFile(p, b, 0o600) }}}})
	if sn := c.Snapshots; sn.Schedule != "" {
		sched, err := snapshot.ParseSchedule(sn.Schedule)
		if err != nil {
			return err
		}
		p.Add(ctl, &snapshotter.Snapshotter{Store: snapshot.Store{Dir: sn.Dir}, Source: source,
			Schedule: sched, SnapshotName: sn.Name, Node: c.NodeName, Retention: sn.Retention, Keeper: keeper,
			Log: s.Log.With("component", "etcd-snapshot")})
	}
	// The server binds its name by node password, with or without a node of its own: no join
	// takes it, and an etcd member of that name is given back only to this machine. The node's
	// kubelet phase, after this one, waits for it. Last: its Start retries until the RBAC it
	// needs is in, which deploy applies (on a shared datastore under the leader election
	// started before it).
	p.Add(ctl, &nodeclaim.Claim{Passwords: join.Passwords{Client: cl.supervisor, Server: true}, Node: c.NodeName,
		File: c.NodePasswordFile, Log: s.Log.With("component", "node-password")})
	return nil
}

// encryptionConfigPath is the Secrets encryption config the apiserver reads, "" when off.
func (s *Server) encryptionConfigPath() string {
	return secretsencryption.ConfigPath(s.Cfg.Control.Dirs.EncryptionConfig(), s.Cfg.Control.SecretsProvider)
}

// policyRecord is what the policy marker holds for this server's version and datastore.
func (s *Server) policyRecord() string {
	return policymarker.Record(s.Cfg.Control.Etcd, s.Cfg.Control.Datastore.Endpoint)
}

// datastorePath is the local datastore whose loss empties the cluster, "" for an external one.
func (s *Server) datastorePath() string {
	c := s.Cfg.Control
	switch {
	case c.Etcd:
		return c.Dirs.EtcdDataDir()
	case c.Datastore.Endpoint != "":
		return ""
	}
	return c.Dirs.DBFile()
}

// datastoreComponent is kine or the embedded etcd: what the apiserver talks to.
type datastoreComponent interface {
	component.Component
	EtcdEndpoint() string
}

func (s *Server) clients() (*clients, error) {
	d := s.Cfg.Control.Dirs
	admin, err := kubeclient.Config(d.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	var cl clients
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	cl.adminCfg, cl.admin, cl.discovery = admin, cs, memory.NewMemCacheClient(cs.Discovery())
	if cl.dynamic, err = dynamic.NewForConfig(admin); err != nil {
		return nil, err
	}
	if cl.supervisor, err = kubeclient.New(d.SupervisorKubeconfig()); err != nil {
		return nil, err
	}
	return &cl, nil
}

// addressType is an IP's EndpointSlice address type.
func addressType(ip net.IP) string {
	if ip.To4() == nil {
		return "IPv6"
	}
	return "IPv4"
}
