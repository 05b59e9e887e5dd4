// Package kubeletca narrows the kubelet CA bundle to the kubelet CA once no node serves a
// certificate from the server CA any more.
package kubeletca

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Trust drops the server CA from this server's kubelet CA bundle once every Node's
// password record says its serving certificate is from the kubelet CA. Until then a node that
// joined before that CA existed may still serve one from the server CA. The drop is for good,
// so it is checked only until it happens (never, on a cluster that began with the kubelet CA).
type Trust struct {
	Client   kubernetes.Interface
	Dir      string        // the server's TLS dir
	Interval time.Duration // default a minute
	Log      *slog.Logger

	logged []string // the nodes last logged as holding the server CA in
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (k *Trust) Name() string { return "kubelet-ca-bundle" }

func (k *Trust) Init(context.Context) error {
	if k.Interval <= 0 {
		k.Interval = time.Minute
	}
	return nil
}

func (k *Trust) Start(ctx context.Context) error {
	if only, err := pki.KubeletCAOnlyRecorded(k.Dir); err != nil || only {
		return err
	}
	ctx, k.cancel = context.WithCancel(context.WithoutCancel(ctx))
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for !k.check(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(k.Interval):
			}
		}
	}()
	return nil
}

// check drops the server CA when no Node needs it, and reports whether it did.
func (k *Trust) check(ctx context.Context) bool {
	nodes, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		if ctx.Err() == nil {
			k.Log.Warn("list nodes", "err", err)
		}
		return false
	}
	records, err := k.Client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(join.PasswordSecretType)})
	if err != nil {
		if ctx.Err() == nil {
			k.Log.Warn("list node passwords", "err", err)
		}
		return false
	}
	var names []string
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	if legacy := join.LegacyServing(names, records.Items); len(legacy) > 0 {
		if !slices.Equal(legacy, k.logged) {
			k.Log.Info("kubelets are verified with the server CA too until these nodes renew their certificates (at their next start) or are deleted", "nodes", legacy)
			k.logged = legacy
		}
		return false
	}
	if err := pki.TrustKubeletCAOnly(k.Dir); err != nil {
		k.Log.Error("drop the server CA from the kubelet CA bundle", "err", err)
		return false
	}
	k.Log.Info("every node's serving certificate is from the kubelet CA: kubelets are no longer verified with the server CA")
	return true
}

func (k *Trust) Stop(context.Context) error {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
	return nil
}

var _ component.Component = (*Trust)(nil)
