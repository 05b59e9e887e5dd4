package lb

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch keeps the load balancer's list at every server of the cluster: the addresses of the
// default/kubernetes EndpointSlice (each apiserver keeps itself there), then the servers the
// agent was given, as a fallback. So an agent joined through one server keeps working when that
// one is gone, as long as any other is up.
type Watch struct {
	Client kubernetes.Interface // an identity that may list EndpointSlices (kube-proxy's)
	LB     *LB
	Log    *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (w *Watch) Name() string               { return "server-list" }
func (w *Watch) Init(context.Context) error { return nil }

// Start watches in the background; it never holds up the start (the list given works).
func (w *Watch) Start(ctx context.Context) error {
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	f := informers.NewSharedInformerFactoryWithOptions(w.Client, 10*time.Minute, informers.WithNamespace("default"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=kubernetes" }))
	inf := f.Discovery().V1().EndpointSlices()
	lister := inf.Lister()
	update := func(any) {
		eps, err := lister.List(labels.Everything())
		if err != nil {
			return
		}
		w.LB.SetServers(Servers(eps, w.LB.Servers))
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: update, UpdateFunc: func(_, o any) { update(o) }, DeleteFunc: update,
	}); err != nil {
		return err
	}
	go func() {
		defer close(w.done)
		f.Start(ctx.Done())
		<-ctx.Done()
		f.Shutdown()
	}()
	return nil
}

func (w *Watch) Stop(context.Context) error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	return nil
}

// Servers are the ready endpoints of the kubernetes EndpointSlices (host:port, sorted), then
// those of given that are not among them.
func Servers(eps []*discoveryv1.EndpointSlice, given []string) []string {
	var out []string
	for _, es := range eps {
		port := 0
		for _, p := range es.Ports {
			if p.Port != nil && (p.Name == nil || *p.Name == "https") {
				port = int(*p.Port)
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				hp := net.JoinHostPort(a, strconv.Itoa(port))
				if !slices.Contains(out, hp) {
					out = append(out, hp)
				}
			}
		}
	}
	slices.Sort(out)
	for _, g := range given {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}
