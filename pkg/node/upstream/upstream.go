// Package upstream runs the kubelet and kube-proxy commands from k8s.io/kubernetes inside this
// process. It is the only node package that links them, so the rest stays light to test.
package upstream

import (
	"context"
	"fmt"
	"net/http"
	"time"

	logsapi "k8s.io/component-base/logs/api/v1"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/outpostk8s/outpost/pkg/component"
	_ "github.com/outpostk8s/outpost/pkg/logging" // registers the "outpost" log format
)

func init() {
	// The kubelet and kube-proxy each apply their logging config to klog's globals; the second
	// would fail as a re-apply unless unchanged re-applies are ignored. Both get the same -v.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
}

// Kubelet returns the in-process kubelet; it is ready when its healthz answers.
func Kubelet(argv []string) *component.InProcess {
	return &component.InProcess{
		ComponentName: "kubelet",
		NoStop:        true,
		Run: func(ctx context.Context) error {
			cmd := kubeletapp.NewKubeletCommand(ctx)
			cmd.SetArgs(argv)
			cmd.SilenceUsage = true
			if err := cmd.ExecuteContext(ctx); err != nil {
				return fmt.Errorf("kubelet: %w", err)
			}
			return nil
		},
		Probe: httpProbe("http://127.0.0.1:10248/healthz"),
	}
}

// KubeProxy returns the in-process kube-proxy.
func KubeProxy(argv []string) *component.InProcess {
	return &component.InProcess{
		ComponentName: "kube-proxy",
		NoStop:        true,
		Run: func(ctx context.Context) error {
			cmd := proxyapp.NewProxyCommand()
			cmd.SetArgs(argv)
			cmd.SilenceUsage = true
			if err := cmd.ExecuteContext(ctx); err != nil {
				return fmt.Errorf("kube-proxy: %w", err)
			}
			return nil
		},
	}
}

func httpProbe(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}
