// Package node assembles this machine's node part from its completed config: containerd, the
// images, the kubelet and kube-proxy, the pod network (CNI, flannel) and the GPU layer. A
// server and an agent run the same assembly; they differ only in where the node's
// credentials are.
package node

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
	"github.com/outpostk8s/outpost/pkg/logging"
	"github.com/outpostk8s/outpost/pkg/memtrim"
	"github.com/outpostk8s/outpost/pkg/node/cni"
	"github.com/outpostk8s/outpost/pkg/node/containerd"
	"github.com/outpostk8s/outpost/pkg/node/flannel"
	"github.com/outpostk8s/outpost/pkg/node/images"
	"github.com/outpostk8s/outpost/pkg/node/kubelet"
	"github.com/outpostk8s/outpost/pkg/node/kubeproxy"
	"github.com/outpostk8s/outpost/pkg/node/lb"
	"github.com/outpostk8s/outpost/pkg/node/netpol"
	"github.com/outpostk8s/outpost/pkg/node/regproxy"
	"github.com/outpostk8s/outpost/pkg/node/servicecidr"
	"github.com/outpostk8s/outpost/pkg/node/sysctl"
	"github.com/outpostk8s/outpost/pkg/payload"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/version"
)

// LBAddress is where an agent's kubelet, kube-proxy and flannel reach the servers: the node's
// load balancer, which forwards to whichever server answers.
const LBAddress = "127.0.0.1:6444"

// Node is one assembly of the node part.
type Node struct {
	Cfg *config.Node
	// TLSDir holds the node's certificates (kubelet serving, client CA): the server's PKI
	// dir, or the agent's join credentials.
	TLSDir string
	// BinDir holds the unpacked containerd, shim, runc and CNI plugins.
	BinDir string
	// Servers, on an agent, are the servers (host:port) its load balancer forwards to, the one
	// that answered the join first; none on a server, whose node talks to its own apiserver.
	Servers []string
	// GPU is what the check step detected (CheckGPU), nil with GPU support off.
	GPU *layer.Plan
	// GPULib answers the GPU layer's NVML calls once the node runs; nil: the GPU helper in
	// BinDir (or the mock's). Tests count on it.
	GPULib    func(c *config.Node, binDir string) (gpulib.Lib, error)
	Kubelet   kubelet.Run
	KubeProxy kubeproxy.Run
	Log       *slog.Logger
	Out       io.Writer // containerd's tagged log lines
	// Guard hears of the embedded libraries' klog.Fatal calls; nil in tests.
	Guard *logging.Guard
}

// Parts are the node's components, grouped by what each group needs before it starts.
type Parts struct {
	Runtime    []component.Component // host settings, the CDI spec, the registry proxy, containerd
	Containerd component.Component   // the one of Runtime the image import needs ready
	Images     component.Component   // the bundled and the user's image archives
	Kubelet    []component.Component // the kubelet, kube-proxy, the service-CIDR guard
	Network    []component.Component // the network and the GPU layer: they need the registered Node
}

// Add puts the node into an agent's plan, each stage waiting for the one before: the
// runtime, the images, the kubelet and kube-proxy, then the network and the GPU layer.
func (p *Parts) Add(plan *component.Plan) {
	for _, c := range p.Runtime {
		plan.Add(component.StageRuntime, c)
	}
	plan.Add(component.StageImages, p.Images)
	p.AddNode(plan)
}

// AddNode puts the kubelet and the network into plan: the stages a server's node shares with
// an agent.
func (p *Parts) AddNode(plan *component.Plan) {
	for _, c := range p.Kubelet {
		plan.Add(component.StageKubelet, c)
	}
	for _, c := range p.Network {
		plan.Add(component.StageNetwork, c)
	}
}

// Parts builds the node's components. Building them writes nothing; each component writes
// its files in its own Init.
func (n *Node) Parts() (*Parts, error) {
	c := n.Cfg
	d := c.Dirs
	client, err := kubeclient.New(d.KubeletKubeconfig())
	if err != nil {
		return nil, err
	}
	gpu, err := n.gpu(client)
	if err != nil {
		return nil, err
	}
	cc := containerd.Config{Root: d.ContainerdRoot(), State: d.RuntimeContainerd(),
		Socket: d.ContainerdSocket(), ConfigFile: d.ContainerdConfig(), BinDir: n.BinDir,
		CNIConfDir: d.CNIConfDir(), SandboxImage: version.PauseImage, CgroupV2: c.Host.CgroupV2,
		RestrictOOMScoreAdj: c.Host.OOMScoreAdjRestricted, Debug: c.Verbosity >= 4,
		RegistryDir: d.RegistryHosts(), Registries: c.Registries}
	first := []component.Component{}
	var balancer *lb.LB
	if len(n.Servers) > 0 {
		balancer = &lb.LB{Listen: LBAddress, Servers: n.Servers, Log: n.Log.With("component", "load-balancer")}
		first = append(first, balancer)
	}
	first = append(first, &sysctl.Component{Root: "/", Log: n.Log})
	if gpu != nil {
		first = append(first, gpu.CDISpec())
	}
	gpuContainerd(c.GPU, gpu, &cc)
	if c.Registries != nil && len(c.Registries.RewriteRoutes()) > 0 {
		proxy := &regproxy.Proxy{Routes: c.Registries.RewriteRoutes(), Config: c.Registries.ConfigFor, Log: n.Log.With("component", "registry-proxy")}
		cc.RegistryProxy = proxy
		first = append(first, proxy)
	}
	ctrd := containerd.New(cc, n.Out)
	first = append(first, ctrd)
	imgs := &images.Images{Importer: images.Importer{Ctr: filepath.Join(n.BinDir, "ctr"), Socket: d.ContainerdSocket(), Run: images.Exec},
		Bundled: payload.ImagesDir(n.BinDir), Dir: d.Images(), RecordFile: d.ImagesRecord(), Log: n.Log.With("component", "images")}

	cl := c.Cluster
	kl, err := kubelet.New(kubelet.Config{NodeName: c.NodeName, NodeIP: c.NodeIP, ConfigFile: d.KubeletConfig(),
		Kubeconfig: d.KubeletKubeconfig(), ClientCAFile: filepath.Join(n.TLSDir, pki.ClientCA+".crt"),
		TLSCertFile: filepath.Join(n.TLSDir, pki.KubeletServing+".crt"), TLSKeyFile: filepath.Join(n.TLSDir, pki.KubeletServing+".key"),
		RuntimeSocket: d.ContainerdSocket(), ClusterDNS: cl.ClusterDNS, ClusterDomain: cl.ClusterDomain,
		ResolvConf: kubelet.ResolvConf("/"), CgroupV2: c.Host.CgroupV2, Verbosity: c.Verbosity, Extra: c.KubeletArgs}, n.Kubelet)
	if err != nil {
		return nil, err
	}
	kp, err := kubeproxy.New(kubeproxy.Config{NodeName: c.NodeName, ConfigFile: d.KubeProxyConfig(), Kubeconfig: d.KubeProxyKubeconfig(),
		ClusterCIDR: cl.ClusterCIDR.String(), MasqueradeAll: !c.Host.BrNetfilter, Verbosity: c.Verbosity, Extra: c.KubeProxyArgs}, n.KubeProxy)
	if err != nil {
		return nil, err
	}
	if n.Guard != nil { // both run on after their Stop: their calls to containerd, stopped next, would fail loudly
		kl.Stopped = func() { n.Guard.Quiet("kubelet") }
		kp.Stopped = func() { n.Guard.Quiet("kube-proxy") }
	}
	ccfg := cni.Config{ConfDir: d.CNIConfDir(), IPAMDir: d.CNINetworks(), NodeName: c.NodeName}
	last := []component.Component{}
	if cl.FlannelBackend != "none" {
		iface, _, err := flannel.Interface(c.FlannelIface, c.NodeIP)
		if err != nil {
			return nil, err
		}
		ccfg.MTU, ccfg.ExternalMasq = iface.MTU-flannel.Overhead(cl.FlannelBackend), true
		last = append(last, flannel.New(flannel.Config{NodeName: c.NodeName, NodeIP: c.NodeIP, Iface: c.FlannelIface,
			Backend: cl.FlannelBackend, ClusterCIDR: cl.ClusterCIDR.String(), Kubeconfig: d.KubeletKubeconfig(),
			Dir: d.FlannelDir(), Log: n.Log.With("component", "flannel")}))
	}
	last = append(last, cni.New(ccfg, client))
	if gpu != nil {
		last = append(last, gpu)
	}
	last = append(last, n.networkPolicy(client))
	if balancer != nil {
		// kube-proxy's identity may list EndpointSlices; the kubelet's may not.
		proxyClient, err := kubeclient.New(d.KubeProxyKubeconfig())
		if err != nil {
			return nil, err
		}
		last = append(last, &lb.Watch{Client: proxyClient, LB: balancer, Log: n.Log.With("component", "load-balancer")})
	}
	// A minute after the network starts, this process and containerd hand back the pages of
	// their binaries that only their start touched (about 60 MiB of PSS on a server).
	last = append(last, &memtrim.Releaser{Host: memtrim.Linux(), After: time.Minute, Log: n.Log.With("component", "page-release"),
		Pids: func() []int {
			pids := []int{os.Getpid()}
			if p := ctrd.Pid(); p > 0 {
				pids = append(pids, p)
			}
			return pids
		}})
	guard := &servicecidr.Guard{CIDR: cl.ServiceCIDR, Log: n.Log.With("component", "service-cidr")}
	return &Parts{Runtime: first, Containerd: ctrd, Images: imgs, Kubelet: []component.Component{kl, kp, guard}, Network: last}, nil
}

// networkPolicy enforces the cluster's NetworkPolicies on this node, or, with them off,
// removes the rules an earlier run left.
func (n *Node) networkPolicy(client kubernetes.Interface) component.Component {
	cl := n.Cfg.Cluster
	cfg := netpol.Config{NodeName: n.Cfg.NodeName, ServiceCIDR: cl.ServiceCIDR, Client: client,
		LookPath: exec.LookPath, First: netpol.FirstJumps(servicecidr.Chain), Log: n.Log.With("component", "network-policy"), Guard: n.Guard}
	if cl.NetworkPolicy {
		return netpol.New(cfg)
	}
	proto := utiliptables.ProtocolIPv4
	if cl.ServiceCIDR.IP.To4() == nil {
		proto = utiliptables.ProtocolIPv6
	}
	return &netpol.Cleaner{Config: cfg, ChainExists: func(chain string) (bool, error) {
		return utiliptables.New(proto).ChainExists(utiliptables.TableFilter, utiliptables.Chain(chain))
	}}
}
