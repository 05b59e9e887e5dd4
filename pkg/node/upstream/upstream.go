// Package upstream runs the kubelet and kube-proxy commands from k8s.io/kubernetes inside this
// process. It is the only node package that links them, so the rest stays light to test.
package upstream

import (
	"context"
	"fmt"

	logsapi "k8s.io/component-base/logs/api/v1"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"

	_ "github.com/outpostk8s/outpost/pkg/logging" // registers the "outpost" log format
)

func init() {
	// The kubelet and kube-proxy each apply their logging config to klog's globals; the second
	// would fail as a re-apply unless unchanged re-applies are ignored. Both get the same -v.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
}

// Kubelet runs the upstream kubelet command with argv (kubelet.Run).
func Kubelet(ctx context.Context, argv []string) error {
	cmd := kubeletapp.NewKubeletCommand(ctx)
	cmd.SetArgs(argv)
	cmd.SilenceUsage = true
	if err := cmd.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	return nil
}

// KubeProxy runs the upstream kube-proxy command with argv (kubeproxy.Run).
func KubeProxy(ctx context.Context, argv []string) error {
	cmd := proxyapp.NewProxyCommand()
	cmd.SetArgs(argv)
	cmd.SilenceUsage = true
	if err := cmd.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("kube-proxy: %w", err)
	}
	return nil
}
