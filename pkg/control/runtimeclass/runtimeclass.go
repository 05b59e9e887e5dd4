// Package runtimeclass creates the RuntimeClasses for the NVIDIA runtimes the cluster's nodes
// have. Each node's GPU layer labels its Node per runtime; a node cannot create cluster
// objects, so the servers do, for every runtime some Node carries, with a node selector on the
// label so that the RuntimeClass's pods land only where its handler exists.
package runtimeclass

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"

	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersnodev1 "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/control/ctrlloop"
	"github.com/outpostk8s/outpost/pkg/control/sharedinformers"
	gpuruntime "github.com/outpostk8s/outpost/pkg/gpu/runtime"
)

// managedBy marks the RuntimeClasses this controller owns: one of the same name without it is
// the user's, and stays as it is.
const (
	managedByKey   = "app.kubernetes.io/managed-by"
	managedByValue = "outpost"
)

// Controller keeps one RuntimeClass per NVIDIA runtime that some Node has. A RuntimeClass
// whose runtime no Node has any more stays: pods naming it then wait for such a node (the
// node selector) rather than being refused.
type Controller struct {
	Client kubernetes.Interface
	// Legacy is the manifest versions before wrote the server node's RuntimeClasses to (no
	// node selector); Init removes it, so the deploy controller no longer applies it.
	Legacy string
	Log    *slog.Logger
	// Informers, when set, is the process's shared factory of Client's identity; nil makes one
	// of the controller's own.
	Informers *sharedinformers.Factory

	nodes   listerscorev1.NodeLister
	classes listersnodev1.RuntimeClassLister
	loop    *ctrlloop.Loop
	foreign map[string]bool // names already reported as the user's
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string { return "gpu-runtimeclasses" }
func (c *Controller) Init(context.Context) error {
	if c.Legacy == "" {
		return nil
	}
	if err := os.Remove(c.Legacy); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove the old RuntimeClasses manifest: %w", err)
	}
	return nil
}

func (c *Controller) Start(ctx context.Context) error {
	inf := sharedinformers.For(c.Informers, c.Client)
	f := inf.Factory()
	nodeInf, rcInf := f.Core().V1().Nodes(), f.Node().V1().RuntimeClasses()
	c.nodes, c.classes = nodeInf.Lister(), rcInf.Lister()
	c.foreign = map[string]bool{}
	// One key, "all": every pass looks at every Node.
	c.loop = ctrlloop.New(ctrlloop.Config{
		Sync: func(ctx context.Context, _ string) error { return c.Sync(ctx) },
		Failed: func(ctx context.Context, _ string, err error) {
			if ctx.Err() == nil { // not the error of being stopped
				c.Log.Warn("RuntimeClasses", "err", err)
			}
		},
		Informers: inf,
		Synced:    []cache.InformerSynced{nodeInf.Informer().HasSynced, rcInf.Informer().HasSynced},
	})
	// Node updates are mostly status: only a change of labels can change the plan.
	nodeHandler := c.loop.KeyHandler("all")
	nodeHandler.UpdateFunc = func(old, cur any) {
		o, ok1 := old.(metav1.Object)
		n, ok2 := cur.(metav1.Object)
		if !ok1 || !ok2 || !reflect.DeepEqual(o.GetLabels(), n.GetLabels()) {
			c.loop.Add("all")
		}
	}
	// Through inf: a shared informer outlives the controller, its handlers must not.
	if err := inf.AddEventHandler(nodeInf.Informer(), nodeHandler); err != nil {
		inf.Shutdown()
		return fmt.Errorf("runtimeclass: %w", err)
	}
	if err := inf.AddEventHandler(rcInf.Informer(), c.loop.KeyHandler("all")); err != nil {
		inf.Shutdown()
		return fmt.Errorf("runtimeclass: %w", err)
	}
	c.loop.Add("all") // the first pass, also when no informer event comes
	// Start's ctx bounds the start only: Stop ends the loop.
	c.loop.Start(context.WithoutCancel(ctx))
	return nil
}

// Sync creates or corrects the RuntimeClass of every runtime some Node is labelled with.
func (c *Controller) Sync(ctx context.Context) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, n := range nodes {
		for _, name := range gpuruntime.Names() {
			if n.Labels[gpuruntime.Label(name)] == "true" {
				present[name] = true
			}
		}
	}
	for _, name := range gpuruntime.Names() {
		if !present[name] {
			continue
		}
		if err := c.ensure(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// Want is the RuntimeClass for runtime name.
func Want(name string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{managedByKey: managedByValue}},
		Handler:    name,
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{gpuruntime.Label(name): "true"}},
	}
}

func (c *Controller) ensure(ctx context.Context, name string) error {
	want := Want(name)
	api := c.Client.NodeV1().RuntimeClasses()
	cur, err := c.classes.Get(name)
	switch {
	case apierrors.IsNotFound(err):
		if _, err := api.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create RuntimeClass %s: %w", name, err)
		}
		c.Log.Info("RuntimeClass created: a node has its runtime", "runtimeclass", name)
		return nil
	case err != nil:
		return err
	case cur.Labels[managedByKey] != managedByValue || cur.Handler != name:
		// The user's own (or one whose handler, immutable, differs): theirs to keep.
		if !c.foreign[name] {
			c.foreign[name] = true
			c.Log.Info("RuntimeClass not managed by Outpost: left as it is", "runtimeclass", name)
		}
		return nil
	case reflect.DeepEqual(cur.Scheduling, want.Scheduling):
		return nil
	}
	// An Outpost one without the node selector (as versions before wrote): set it.
	up := cur.DeepCopy()
	up.Scheduling = want.Scheduling
	if _, err := api.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update RuntimeClass %s: %w", name, err)
	}
	c.Log.Info("RuntimeClass node selector set", "runtimeclass", name)
	return nil
}

func (c *Controller) Stop(context.Context) error {
	c.loop.Stop()
	return nil
}
