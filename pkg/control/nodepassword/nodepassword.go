// Package nodepassword removes a node's password record when its Node is deleted, so that
// `kubectl delete node NAME` frees the name for another machine, as the join's refusal says.
package nodepassword

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
)

// NodePassword deletes the password Secret of every deleted Node, and of names that have had no
// Node for Grace (a join whose node never registered, or a Node deleted while no server ran),
// except a server's.
type NodePassword struct {
	Client kubernetes.Interface
	Log    *slog.Logger
	Grace  time.Duration // default 10 minutes
	Resync time.Duration // default 10 minutes
	Now    func() time.Time
	// Keep is the server's own node name, whose record stays whatever happens to its Node.
	Keep string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *NodePassword) Name() string { return "node-password-cleaner" }

func (c *NodePassword) Init(context.Context) error {
	if c.Grace <= 0 {
		c.Grace = 10 * time.Minute
	}
	if c.Resync <= 0 {
		c.Resync = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func (c *NodePassword) Start(ctx context.Context) error {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f := informers.NewSharedInformerFactory(c.Client, 0)
	nodes := f.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if n, ok := obj.(*corev1.Node); ok {
			c.forget(ctx, n.Name, n.CreationTimestamp.Time)
		}
	}}); err != nil {
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// Its role comes with the deploy manifests: on a new cluster, moments after this.
		if kubeclient.WaitAllowed(ctx, c.Client, c.Log, time.Second/2, kubeclient.List("", "nodes")...) != nil {
			return
		}
		f.Start(ctx.Done())
		t := time.NewTicker(c.Resync)
		defer t.Stop()
		for {
			c.Sweep(ctx)
			select {
			case <-ctx.Done():
				f.Shutdown()
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Sweep deletes the records of names without a Node that are older than Grace.
func (c *NodePassword) Sweep(ctx context.Context) {
	secs, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(join.PasswordSecretType)})
	if err != nil {
		if ctx.Err() == nil {
			c.Log.Warn("list node passwords", "err", err)
		}
		return
	}
	for _, s := range secs.Items {
		node, ok := strings.CutSuffix(s.Name, join.SecretName(""))
		// A server's record binds its name with or without a Node (--disable-agent): it goes
		// only with a deleted Node.
		if !ok || s.Type != join.PasswordSecretType || s.Labels[join.ServerLabel] == "true" || c.Now().Sub(s.CreationTimestamp.Time) < c.Grace {
			continue
		}
		if _, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			c.forget(ctx, node, c.Now())
		}
	}
}

// forget deletes node's record if it predates before: the deleted Node's own (a join records
// it before the kubelet registers). A record made later is a new machine's, which joined
// under the freed name meanwhile; it stays. The UID precondition keeps it so under a race.
func (c *NodePassword) forget(ctx context.Context, node string, before time.Time) {
	if node == c.Keep {
		return
	}
	secrets := c.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	sec, err := secrets.Get(ctx, join.SecretName(node), metav1.GetOptions{})
	if err != nil || sec.Type != join.PasswordSecretType || sec.CreationTimestamp.After(before) {
		return
	}
	err = secrets.Delete(ctx, sec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &sec.UID}})
	switch {
	case err == nil:
		c.Log.Info("node deleted: its name is free for another machine", "node", node)
	case !apierrors.IsNotFound(err) && ctx.Err() == nil:
		c.Log.Warn("delete node password", "node", node, "err", err)
	}
}

func (c *NodePassword) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

var _ component.Component = (*NodePassword)(nil)
