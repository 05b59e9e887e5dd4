package server

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

// kubeletTrust drops the server CA from this server's kubelet CA bundle once every Node's
// password record says its serving certificate is from the kubelet CA. Until then a node that
// joined before that CA existed may still serve one from the server CA. The drop is for good,
// so it is checked only until it happens (never, on a cluster that began with the kubelet CA).
type kubeletTrust struct {
	client   kubernetes.Interface
	dir      string        // the server's TLS dir
	interval time.Duration // default a minute
	log      *slog.Logger

	logged []string // the nodes last logged as holding the server CA in
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (k *kubeletTrust) Name() string { return "kubelet-ca-bundle" }

func (k *kubeletTrust) Init(context.Context) error {
	if k.interval <= 0 {
		k.interval = time.Minute
	}
	return nil
}

func (k *kubeletTrust) Start(ctx context.Context) error {
	if only, err := pki.KubeletCAOnlyRecorded(k.dir); err != nil || only {
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
			case <-time.After(k.interval):
			}
		}
	}()
	return nil
}

// check drops the server CA when no Node needs it, and reports whether it did.
func (k *kubeletTrust) check(ctx context.Context) bool {
	nodes, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("list nodes", "err", err)
		}
		return false
	}
	records, err := k.client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(join.PasswordSecretType)})
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("list node passwords", "err", err)
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
			k.log.Info("kubelets are verified with the server CA too until these nodes renew their certificates (at their next start) or are deleted", "nodes", legacy)
			k.logged = legacy
		}
		return false
	}
	if err := pki.TrustKubeletCAOnly(k.dir); err != nil {
		k.log.Error("drop the server CA from the kubelet CA bundle", "err", err)
		return false
	}
	k.log.Info("every node's serving certificate is from the kubelet CA: kubelets are no longer verified with the server CA")
	return true
}

func (k *kubeletTrust) Stop(context.Context) error {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
	return nil
}

var _ component.Component = (*kubeletTrust)(nil)
