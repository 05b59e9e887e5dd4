// Package etcdmember removes a server's embedded-etcd member when its Node is deleted, as k3s
// does: `kubectl delete node NAME` of a server that is gone for good shrinks the etcd cluster
// to the servers that remain, so its quorum no longer counts the dead one.
package etcdmember

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/control/sharedinformers"
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
	// Informers, when set, is the process's shared factory of Client's identity; nil makes one
	// of the Remover's own.
	Informers *sharedinformers.Factory

	inf    *sharedinformers.User
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *Remover) Name() string               { return "etcd-member-remover" }
func (r *Remover) Init(context.Context) error { return nil }

func (r *Remover) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.inf = sharedinformers.For(r.Informers, r.Client)
	nodes := r.inf.Factory().Core().V1().Nodes().Informer()
	if err := r.inf.AddEventHandler(nodes, cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		// Stop removes this handler before it waits: no removal starts after that.
		if n, ok := obj.(*corev1.Node); ok && n.Name != r.Own && ctx.Err() == nil {
			r.wg.Add(1)
			go func() { defer r.wg.Done(); r.remove(ctx, n.Name) }()
		}
	}}); err != nil {
		return fmt.Errorf("etcd member remover: %w", err)
	}
	r.inf.Start(ctx.Done())
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
		r.inf.Shutdown() // its handler done: the removals under way are all in wg
		r.wg.Wait()
	}
	return nil
}

var _ component.Component = (*Remover)(nil)
