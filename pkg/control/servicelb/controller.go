package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/control/ctrlloop"
	"github.com/outpostk8s/outpost/pkg/hostport"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
)

// Controller keeps the Services' load-balancer status in line with Plan. Any change to a
// Service or a Node replans all of them: ports are a shared resource, and a site has tens of
// Services, not thousands.
type Controller struct {
	Client   kubernetes.Interface
	Reserved map[Port]string
	Log      *slog.Logger

	services listerscorev1.ServiceLister
	nodes    listerscorev1.NodeLister
	loop     *ctrlloop.Loop
	events   record.EventBroadcaster
	recorder record.EventRecorder
	warned   map[string]string // Service key -> the pending message last recorded
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string               { return "servicelb" }
func (c *Controller) Init(context.Context) error { return nil }

func (c *Controller) Start(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // Start's ctx bounds the start only: Stop ends the loop
	f := informers.NewSharedInformerFactory(c.Client, 0)
	svcInf, nodeInf := f.Core().V1().Services(), f.Core().V1().Nodes()
	c.services, c.nodes = svcInf.Lister(), nodeInf.Lister()
	c.warned = map[string]string{}
	c.events = record.NewBroadcaster(record.WithContext(ctx))
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Client.CoreV1().Events("")})
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "outpost-servicelb"})
	// One key, "all": every pass replans every Service.
	c.loop = ctrlloop.New(ctrlloop.Config{
		Sync:      func(ctx context.Context, _ string) error { return c.Sync(ctx) },
		Failed:    func(_ context.Context, _ string, err error) { c.Log.Warn("service load balancers", "err", err) },
		Informers: f,
		Synced:    []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		// Its role comes with the deploy manifests: on a new cluster, moments after this.
		Before: func(ctx context.Context) {
			_ = kubeclient.WaitAllowed(ctx, c.Client, c.Log, time.Second/2, append(kubeclient.List("", "services"), kubeclient.List("", "nodes")...)...)
		},
	})
	kick := c.loop.KeyHandler("all")
	if _, err := svcInf.Informer().AddEventHandler(kick); err != nil {
		return fmt.Errorf("servicelb: %w", err)
	}
	if _, err := nodeInf.Informer().AddEventHandler(kick); err != nil {
		return fmt.Errorf("servicelb: %w", err)
	}
	c.loop.Add("all") // the first pass, also when no informer event comes
	c.loop.Start(ctx)
	return nil
}

func (c *Controller) Stop(context.Context) error {
	c.loop.Stop()
	if c.events != nil {
		c.events.Shutdown()
	}
	return nil
}

// Sync writes every Service's planned status; it records an Event when a Service is held
// back for a new reason.
func (c *Controller) Sync(ctx context.Context) error {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var firstErr error
	// Rebuilt each pass: a Service deleted and made again while blocked is warned again.
	warned := map[string]string{}
	defer func() { c.warned = warned }()
	for _, d := range Plan(svcs, nodes, c.Reserved) {
		k := string(d.Service.UID) + "/" + key(d.Service)
		if d.Holder != "" {
			reason, msg := "PortInUse", fmt.Sprintf("port %s on the nodes' addresses is held by %s", d.Port, d.Holder)
			// Its own reason: no deletion frees a reserved port, so the Service must move.
			if why, ok := c.Reserved[d.Port]; ok && why == d.Holder {
				reason, msg = "PortReserved", fmt.Sprintf("port %s on the nodes' addresses is reserved for %s: pick another port", d.Port, why)
			}
			if c.warned[k] != msg {
				c.recorder.Event(d.Service, corev1.EventTypeWarning, reason, msg)
			}
			warned[k] = msg
		}
		cur := d.Service.Status.LoadBalancer.Ingress
		if len(cur) == len(d.Ingress) && (len(cur) == 0 || reflect.DeepEqual(cur, d.Ingress)) {
			continue
		}
		s := d.Service.DeepCopy()
		s.Status.LoadBalancer.Ingress = d.Ingress
		if _, err := c.Client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("status of Service %s: %w", key(s), err)
		}
	}
	return firstErr
}

// Reserved is what Outpost itself, or the host, listens on at a node's address: a Service
// there would take the port from it. Loopback-only ports are in too, in case a flag moves
// them. etcd: embedded etcd runs, serving clients and peers on the node's address (its
// metrics ride on the client port). extra are the admin's (--servicelb-reserved-ports).
func Reserved(apiPort int, etcd bool, extra []hostport.Port) map[Port]string {
	r := map[Port]string{
		{corev1.ProtocolTCP, int32(apiPort)}: "the Kubernetes API server",
		{corev1.ProtocolTCP, 6444}:           "the agents' API load balancer",
		{corev1.ProtocolTCP, 10250}:          "the kubelet",
		{corev1.ProtocolTCP, 10248}:          "the kubelet's health check",
		{corev1.ProtocolTCP, 10256}:          "kube-proxy's health check",
		{corev1.ProtocolTCP, 10257}:          "kube-controller-manager",
		{corev1.ProtocolTCP, 10258}:          "the metrics API",
		{corev1.ProtocolTCP, 10259}:          "kube-scheduler",
		{corev1.ProtocolUDP, 8472}:           "flannel's VXLAN",
		{corev1.ProtocolTCP, 9401}:           "the GPU metrics endpoint", // pkg/gpu/metrics.DefaultPort
		{corev1.ProtocolTCP, 22}:             "SSH",
	}
	if etcd {
		r[Port{corev1.ProtocolTCP, 2379}] = "embedded etcd's clients"
		r[Port{corev1.ProtocolTCP, 2380}] = "embedded etcd's peers"
	}
	for _, p := range extra {
		k := Port{corev1.Protocol(p.Protocol), p.Number}
		if _, ok := r[k]; !ok {
			r[k] = "the admin (--servicelb-reserved-ports)"
		}
	}
	return r
}
