// Package controllermanager runs the upstream kube-controller-manager in-process.
package controllermanager

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/outpostk8s/outpost/pkg/args"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Config is the controller-manager's slice of the server config.
type Config struct {
	Kubeconfig  string
	TLSDir      string
	ClusterCIDR string
	ServiceCIDR string
	// LeaderElect when other servers may run beside this one (a shared datastore).
	LeaderElect bool
	Extra       []string
}

// Args is the deterministic argv.
func Args(c Config) ([]string, error) {
	tls := func(name, ext string) string { return filepath.Join(c.TLSDir, name+ext) }
	// "controllers" leaves out tokencleaner: an expired join token stays listed (and deletable)
	// so that an agent presenting it is told it expired, not that it is unknown.
	return args.Build(map[string]string{
		"allocate-node-cidrs":       "true",
		"authentication-kubeconfig": c.Kubeconfig,
		"authorization-kubeconfig":  c.Kubeconfig,
		"bind-address":              "127.0.0.1",
		"cluster-cidr":              c.ClusterCIDR,
		"cluster-signing-kube-apiserver-client-cert-file": tls(pki.ClientCA, ".crt"),
		"cluster-signing-kube-apiserver-client-key-file":  tls(pki.ClientCA, ".key"),
		"cluster-signing-kubelet-client-cert-file":        tls(pki.ClientCA, ".crt"),
		"cluster-signing-kubelet-client-key-file":         tls(pki.ClientCA, ".key"),
		"cluster-signing-kubelet-serving-cert-file":       tls(pki.KubeletServingCA, ".crt"),
		"cluster-signing-kubelet-serving-key-file":        tls(pki.KubeletServingCA, ".key"),
		"cluster-signing-legacy-unknown-cert-file":        tls(pki.ServerCA, ".crt"),
		"cluster-signing-legacy-unknown-key-file":         tls(pki.ServerCA, ".key"),
		"configure-cloud-routes":                          "false",
		"controllers":                                     "*",
		// The scheduler's defaults, not 20/30: with use-service-account-credentials each
		// controller's client is made through one shared client (its service account and a
		// token, about 120 requests for them all), so at 20/s node-ipam set the first node's
		// PodCIDR 5 s after the start, the cold start's critical path; about 2 s less now.
		"kube-api-burst":                   "100",
		"kube-api-qps":                     "50",
		"kubeconfig":                       c.Kubeconfig,
		"leader-elect":                     strconv.FormatBool(c.LeaderElect),
		"node-cidr-mask-size":              "24",
		"profiling":                        "false",
		"root-ca-file":                     tls(pki.ServerCA, ".crt"),
		"secure-port":                      "10257",
		"service-account-private-key-file": tls(pki.ServiceAccountKeyFile, ""),
		"service-cluster-ip-range":         c.ServiceCIDR,
		"terminated-pod-gc-threshold":      "1000",
		"tls-cert-file":                    tls(pki.ControllerServing, ".crt"),
		"tls-private-key-file":             tls(pki.ControllerServing, ".key"),
		"use-service-account-credentials":  "true",
	}, c.Extra)
}

// ControllerManager is the in-process kube-controller-manager.
type ControllerManager struct{ component.InProcess }

var _ component.Component = (*ControllerManager)(nil)

// New returns the component.
func New(c Config) (*ControllerManager, error) {
	argv, err := Args(c)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager args: %w", err)
	}
	return &ControllerManager{component.InProcess{ComponentName: "kube-controller-manager", Run: func(ctx context.Context) error {
		s, err := options.NewKubeControllerManagerOptions()
		if err != nil {
			return err
		}
		known, disabled, aliases := app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases()
		fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
		for _, f := range s.Flags(known, disabled, aliases).FlagSets {
			fs.AddFlagSet(f)
		}
		if err := fs.Parse(argv); err != nil {
			return fmt.Errorf("kube-controller-manager flags: %w", err)
		}
		if err := s.ComponentGlobalsRegistry.Set(); err != nil {
			return err
		}
		cfg, err := s.Config(ctx, known, disabled, aliases)
		if err != nil {
			return err
		}
		return app.Run(ctx, cfg.Complete())
	}}}, nil
}
