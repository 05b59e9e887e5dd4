// Package apiserver runs the upstream kube-apiserver in-process. It builds the options the
// way the upstream command does but without the command's signal handler, which may be
// installed only once per process.
package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/outpostk8s/outpost/pkg/args"
	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/pki"
)

// Config is the apiserver's slice of the server config.
type Config struct {
	TLSDir        string
	ConfDir       string // where the authentication config is written
	EtcdEndpoint  string
	AdvertiseIP   string
	BindAddress   string
	Port          int
	ServiceCIDR   string
	ClusterDomain string
	Verbosity     int
	Extra         []string
	// EncryptionConfig, when set, encrypts Secrets at rest; the apiserver re-reads it when
	// it changes (key rotation).
	EncryptionConfig string
	// Handlers are served on the apiserver's port beside the API (the join API), behind its
	// authentication and authorization.
	Handlers map[string]http.Handler
	// Anonymous are the paths, beside health, that anonymous requests may reach.
	Anonymous []string
	// PolicyCurrent: the datastore holds the default RBAC policy and system PriorityClasses
	// of this Kubernetes version (an earlier start's /readyz passed on it). Readiness then
	// does not wait for the two post-start hooks that re-check them: each sleeps a second
	// before its first try, so they are the last checks a restart's /readyz waits for.
	PolicyCurrent bool
	// Identity is the server's node name. The apiserver's identity Lease is named after it
	// instead of the host name: servers on cloned machines share a host name, and their
	// apiservers would fight over one Lease ("the object has been modified" every 10 s).
	Identity string
}

// Args is the deterministic argv: defaults merged with the user's extra flags.
func Args(c Config) ([]string, error) {
	tls := func(name, ext string) string { return filepath.Join(c.TLSDir, name+ext) }
	issuer := "https://kubernetes.default.svc." + c.ClusterDomain
	defaults := map[string]string{
		"advertise-address":        c.AdvertiseIP,
		"allow-privileged":         "true",
		"api-audiences":            issuer,
		"authentication-config":    filepath.Join(c.ConfDir, "authentication.yaml"),
		"authorization-mode":       "Node,RBAC",
		"bind-address":             c.BindAddress,
		"client-ca-file":           tls(pki.ClientCA, ".crt"),
		"enable-admission-plugins": "NodeRestriction",
		// Aggregated APIs by endpoint, not ClusterIP: the ClusterIP needs kube-proxy on this
		// host, which a --disable-agent server lacks (the metrics API listens on the host).
		"enable-aggregator-routing":          "true",
		"etcd-servers":                       c.EtcdEndpoint,
		"kubelet-certificate-authority":      tls(pki.KubeletCABundle, ".crt"),
		"kubelet-client-certificate":         tls(pki.APIServerKubelet, ".crt"),
		"kubelet-client-key":                 tls(pki.APIServerKubelet, ".key"),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          "false",
		"proxy-client-cert-file":             tls(pki.AuthProxy, ".crt"),
		"proxy-client-key-file":              tls(pki.AuthProxy, ".key"),
		"requestheader-allowed-names":        pki.AuthProxyName,
		"requestheader-client-ca-file":       tls(pki.RequestHeaderCA, ".crt"),
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(c.Port),
		"service-account-issuer":             issuer,
		"service-account-key-file":           tls(pki.ServiceAccountKeyFile, ""),
		"service-account-signing-key-file":   tls(pki.ServiceAccountKeyFile, ""),
		"service-cluster-ip-range":           c.ServiceCIDR,
		"service-node-port-range":            "30000-32767",
		"tls-cert-file":                      tls(pki.APIServerServing, ".crt"),
		"tls-private-key-file":               tls(pki.APIServerServing, ".key"),
		"v":                                  strconv.Itoa(c.Verbosity),
	}
	if c.EncryptionConfig != "" {
		defaults["encryption-provider-config"] = c.EncryptionConfig
		defaults["encryption-provider-config-automatic-reload"] = "true"
	}
	return args.Build(defaults, c.Extra)
}

// AuthConfig lets anonymous requests reach the health endpoints and the given paths, nothing
// else.
func AuthConfig(paths []string) string {
	var extra []string
	for _, p := range paths {
		extra = append(extra, "  - path: "+p+"\n")
	}
	sort.Strings(extra)
	return fmt.Sprintf(authConfig, strings.Join(extra, ""))
}

const authConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
%s`

// APIServer is the in-process kube-apiserver.
type APIServer struct{ component.InProcess }

var _ component.Component = (*APIServer)(nil)

// New returns the component.
func New(c Config) (*APIServer, error) {
	argv, err := Args(c)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver args: %w", err)
	}
	probe, err := readyProbe(c)
	if err != nil {
		return nil, err
	}
	return &APIServer{component.InProcess{
		ComponentName: "kube-apiserver",
		Prepare: func(context.Context) error {
			if err := os.MkdirAll(c.ConfDir, 0o700); err != nil {
				return fmt.Errorf("apiserver config dir: %w", err)
			}
			return pki.WriteFile(filepath.Join(c.ConfDir, "authentication.yaml"), []byte(AuthConfig(c.Anonymous)), 0o600)
		},
		Run:   func(ctx context.Context) error { return run(ctx, argv, c.Identity, c.Handlers) },
		Probe: probe,
	}}, nil
}

func run(ctx context.Context, argv []string, identity string, handlers map[string]http.Handler) error {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(argv); err != nil {
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	// app.Run's steps, with the extra handlers added before the server starts.
	if completed.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		completed.InformerName = name
	}
	// The generic apiserver hashes the host name into its identity (the Lease name) inside
	// NewConfig, through a hook upstream exports for tests; this process runs one apiserver.
	if identity != "" {
		genericapiserver.SetHostnameFuncForTests(identity)
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		return err
	}
	// The apiserver's own loopback clients read v1 Endpoints for the kubernetes Service every
	// 10 s (lease endpoint reconciler) and would log its deprecation warning each time.
	config.KubeAPIs.ControlPlane.Generic.LoopbackClientConfig.WarningHandler = quietDeprecations{}
	cc, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := app.CreateServerChain(cc)
	if err != nil {
		return err
	}
	for p, h := range handlers {
		if strings.HasSuffix(p, "/") { // a tree
			server.GenericAPIServer.Handler.NonGoRestfulMux.HandlePrefix(p, h)
			continue
		}
		server.GenericAPIServer.Handler.NonGoRestfulMux.Handle(p, h)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// quietDeprecations logs the warnings the apiserver's loopback clients get, except API
// deprecation notices: those name upstream's own calls, which a user cannot change.
type quietDeprecations struct{}

func (quietDeprecations) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && strings.Contains(text, " is deprecated") {
		return
	}
	rest.WarningLogger{}.HandleWarningHeader(code, agent, text)
}

// ReadyURL is the loopback /readyz, without the policy hooks when the policy is current.
func ReadyURL(c Config) string {
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", c.Port)
	if c.PolicyCurrent {
		url += "?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes"
	}
	return url
}

// readyProbe asks /readyz on loopback, trusting only the cluster's server CA.
func readyProbe(c Config) (func(context.Context) error, error) {
	url := ReadyURL(c)
	return func(ctx context.Context) error {
		caPEM, err := os.ReadFile(filepath.Join(c.TLSDir, pki.ServerCA+".crt"))
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		return component.GetOK(ctx, client, url)
	}, nil
}
