// Package etcdmember removes a server's embedded-etcd member when its Node is deleted, as k3s
// does: `kubectl delete node NAME` of a server that is gone for good shrinks the etcd cluster
// to the servers that remain, so its quorum no longer counts the dead one.
package etcdmember

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Remover removes the etcd member named after each deleted Node. Nodes of agents have no
// member: nothing happens for them.
type Remover struct {
	Client kubernetes.Interface
	// Remove removes the member named name; false when there is none.
	Remove func(ctx context.Context, name string) (bool, error)
	// Own is this server's member: its own Node's deletion leaves it to another server.
	Own string
	Log *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *Remover) Name() string               { return "etcd-member-remover" }
func (r *Remover) Init(context.Context) error { return nil }

func (r *Remover) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f := informers.NewSharedInformerFactory(r.Client, 0)
	nodes := f.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if n, ok := obj.(*corev1.Node); ok && n.Name != r.Own {
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.remove(ctx, n.Name) }()
		}
	}}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	r.wg.Add(1)
	go func() { defer r.wg.Done(); <-ctx.Done(); f.Shutdown() }()
	return nil
}

func (r *Remover) remove(ctx context.Context, name string) {
	// etcd refuses while the others have not all been connected for a few seconds.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	removed, err := r.Remove(ctx, name)
	switch {
	case err != nil:
		r.Log.Error("etcd member of a deleted node not removed: remove it with `outpost etcd member remove`", "node", name, "err", err)
	case removed:
		r.Log.Info("etcd member of a deleted node removed", "node", name)
	}
}

func (r *Remover) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
	return nil
}

var _ component.Component = (*Remover)(nil)
