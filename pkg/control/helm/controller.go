// Package helm installs Helm charts that HelmChart objects (k3s's helm-controller API,
// helm.cattle.io/v1, with HelmChartConfig overrides) describe, with the Helm SDK in this
// process: no job pods and no helm image. The CRDs are helm-controller's own.
package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"github.com/k3s-io/helm-controller/pkg/crds"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/control/ctrlloop"
)

// Finalizer holds a HelmChart until its release is uninstalled. It is the name k3s's
// helm-controller uses, so charts carried over from k3s are removed the same way.
const Finalizer = "wrangler.cattle.io/on-helm-chart-remove"

var (
	chartsGVR  = helmv1.SchemeGroupVersion.WithResource("helmcharts")
	configsGVR = helmv1.SchemeGroupVersion.WithResource("helmchartconfigs")
)

// Controller reconciles HelmCharts one at a time (installs are rare and heavy).
type Controller struct {
	Client   kubernetes.Interface
	Dynamic  dynamic.Interface
	APIExt   apiextclient.Interface
	Releaser *Releaser
	Log      *slog.Logger
	// Resync is how often every chart is looked at again without an event; 0 is 3 minutes.
	// The resync re-reads what charts reference (values Secrets): a change there upgrades.
	Resync time.Duration

	charts, configs cache.GenericLister
	loop            *ctrlloop.Loop
	events          record.EventBroadcaster
	recorder        record.EventRecorder
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string               { return "helm-controller" }
func (c *Controller) Init(context.Context) error { return nil }

// Start registers the CRDs and runs the controller in the background; a failure to
// register is retried: Helm charts are not what the server's start waits for.
func (c *Controller) Start(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // Start's ctx bounds the start only: Stop ends the loop
	c.events = record.NewBroadcaster(record.WithContext(ctx))
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Client.CoreV1().Events("")})
	c.recorder = c.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "outpost-helm-controller"})
	resync := c.Resync
	if resync <= 0 {
		resync = 3 * time.Minute
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(c.Dynamic, resync)
	charts, configs := f.ForResource(chartsGVR), f.ForResource(configsGVR)
	c.charts, c.configs = charts.Lister(), configs.Lister()
	c.loop = ctrlloop.New(ctrlloop.Config{
		Sync:        c.sync,
		Failed:      func(_ context.Context, k string, err error) { c.Log.Warn("helm chart", "chart", k, "err", err) },
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](2*time.Second, 2*time.Minute),
		Informers:   f,
		Synced:      []cache.InformerSynced{charts.Informer().HasSynced, configs.Informer().HasSynced},
		Before:      c.registerCRDs, // the informers list HelmCharts: the CRDs come first
	})
	// A HelmChartConfig has its chart's namespace and name: its key is the chart's.
	h := c.loop.ObjectHandler()
	for _, inf := range []cache.SharedIndexInformer{charts.Informer(), configs.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("helm-controller: %w", err)
		}
	}
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

// registerCRDs retries ensureCRDs until it succeeds or ctx ends.
func (c *Controller) registerCRDs(ctx context.Context) {
	for started := time.Now(); ctx.Err() == nil; {
		if err := c.ensureCRDs(ctx); err == nil {
			return
		} else if !apierrors.IsForbidden(err) || time.Since(started) > time.Minute {
			// Forbidden at first is the deploy of this identity's binding, in the same
			// phase, not done yet: quiet for a minute.
			c.Log.Warn("registering the HelmChart CRDs", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// ensureCRDs creates or updates helm-controller's CRDs and waits until they serve.
func (c *Controller) ensureCRDs(ctx context.Context) error {
	list, err := crds.List()
	if err != nil {
		return err
	}
	api := c.APIExt.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range list {
		crd.Labels = map[string]string{"app.kubernetes.io/managed-by": "outpost"}
		cur, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, crd, metav1.CreateOptions{})
		case err == nil:
			cur.Spec = crd.Spec
			_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range list {
		for {
			cur, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err == nil && established(cur.Status.Conditions) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// sync reconciles one HelmChart: uninstall when it is being deleted, else hold it with the
// finalizer and apply its release; the outcome goes to its Failed condition and an Event.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	obj, err := c.charts.ByNamespace(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	u := obj.(*unstructured.Unstructured).DeepCopy()
	var hc helmv1.HelmChart
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hc); err != nil {
		return fmt.Errorf("decode HelmChart %s: %w", key, err)
	}
	if hc.DeletionTimestamp != nil {
		if !slices.Contains(hc.Finalizers, Finalizer) {
			return nil
		}
		if err := c.Releaser.Remove(ctx, &hc); err != nil {
			var untrusted *UntrustedError
			if errors.As(err, &untrusted) {
				// The finalizer stays until an administrator deletes the records.
				c.Log.Warn("release records not written by the controller: not uninstalled", "chart", key, "err", err)
				c.recorder.Event(u, corev1.EventTypeWarning, "UntrustedRelease", err.Error())
				return nil
			}
			c.recorder.Event(u, corev1.EventTypeWarning, "UninstallFailed", err.Error())
			return err
		}
		u.SetFinalizers(slices.DeleteFunc(u.GetFinalizers(), func(f string) bool { return f == Finalizer }))
		_, err := c.Dynamic.Resource(chartsGVR).Namespace(ns).Update(ctx, u, metav1.UpdateOptions{})
		return err
	}
	if !slices.Contains(hc.Finalizers, Finalizer) {
		u.SetFinalizers(append(u.GetFinalizers(), Finalizer))
		_, err := c.Dynamic.Resource(chartsGVR).Namespace(ns).Update(ctx, u, metav1.UpdateOptions{})
		return err // the update comes back as an event
	}
	var hcc *helmv1.HelmChartConfig
	if o, err := c.configs.ByNamespace(ns).Get(name); err == nil {
		hcc = &helmv1.HelmChartConfig{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.(*unstructured.Unstructured).Object, hcc); err != nil {
			return fmt.Errorf("decode HelmChartConfig %s: %w", key, err)
		}
	}
	out, applyErr := Outcome(""), error(nil)
	in, applyErr := Resolve(ctx, c.Client, &hc, hcc)
	if applyErr == nil {
		out, applyErr = c.Releaser.Apply(ctx, in)
	}
	cond := helmv1.HelmChartCondition{Type: helmv1.HelmChartFailed, Status: corev1.ConditionFalse, Reason: string(out)}
	var held *HeldError
	var untrusted *UntrustedError
	if errors.As(applyErr, &held) || errors.As(applyErr, &untrusted) {
		// Reported once; the chart waits for a change (or the administrator).
		reason, event := "Held", "ChartHeld"
		if untrusted != nil {
			reason, event = "Untrusted", "UntrustedRelease"
		}
		cond = helmv1.HelmChartCondition{Type: helmv1.HelmChartFailed, Status: corev1.ConditionTrue, Reason: reason, Message: applyErr.Error()}
		if !hasCondition(hc.Status.Conditions, cond) {
			if untrusted != nil {
				c.Log.Warn("release records not written by the controller: release left alone", "chart", key, "err", applyErr)
			}
			c.recorder.Event(u, corev1.EventTypeWarning, event, applyErr.Error())
		}
		return c.setCondition(ctx, u, hc.Status.Conditions, cond)
	}
	if applyErr != nil {
		cond = helmv1.HelmChartCondition{Type: helmv1.HelmChartFailed, Status: corev1.ConditionTrue, Reason: "Error", Message: applyErr.Error()}
		c.recorder.Event(u, corev1.EventTypeWarning, "ChartFailed", applyErr.Error())
	} else if out != Unchanged {
		c.recorder.Eventf(u, corev1.EventTypeNormal, string(out), "release %s/%s %s", TargetNamespace(&hc), hc.Name, out)
	}
	if err := c.setCondition(ctx, u, hc.Status.Conditions, cond); err != nil {
		return err
	}
	return applyErr
}

func hasCondition(have []helmv1.HelmChartCondition, cond helmv1.HelmChartCondition) bool {
	return slices.ContainsFunc(have, func(x helmv1.HelmChartCondition) bool {
		return x.Type == cond.Type && x.Status == cond.Status && x.Reason == cond.Reason && x.Message == cond.Message
	})
}

// setCondition writes the Failed condition when it changed (Unchanged keeps the last reason).
func (c *Controller) setCondition(ctx context.Context, u *unstructured.Unstructured, have []helmv1.HelmChartCondition, cond helmv1.HelmChartCondition) error {
	conds := slices.DeleteFunc(slices.Clone(have), func(x helmv1.HelmChartCondition) bool { return x.Type == cond.Type })
	for _, x := range have {
		if x.Type == cond.Type && x.Status == cond.Status && x.Message == cond.Message && (cond.Reason == string(Unchanged) || x.Reason == cond.Reason) {
			return nil
		}
	}
	conds = append(conds, cond)
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&helmv1.HelmChartStatus{Conditions: conds})
	if err != nil {
		return err
	}
	u.Object["status"] = raw
	_, err = c.Dynamic.Resource(chartsGVR).Namespace(u.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("status of %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return err
}

func established(conds []apiextv1.CustomResourceDefinitionCondition) bool {
	for _, c := range conds {
		if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
			return true
		}
	}
	return false
}
