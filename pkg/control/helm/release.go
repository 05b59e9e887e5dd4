package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// HashLabel on a release names the config it was made from (ConfigHash).
const HashLabel = "outpost.io/config-hash"

// Outcome of one Apply.
type Outcome string

const (
	Unchanged   Outcome = "Unchanged"
	Installed   Outcome = "Installed"
	Upgraded    Outcome = "Upgraded"
	Reinstalled Outcome = "Reinstalled"
)

// Releaser runs Helm's install, upgrade and uninstall actions in this process; releases are
// stored as Secrets (as the helm CLI stores them) in the HelmChart's namespace.
type Releaser struct {
	Kubeconfig string // charts may create anything: a cluster-admin identity (system:outpost-helm)
	CacheDir   string // repository index and chart downloads
	Timeout    time.Duration
	// API (host:port) stands for %{KUBERNETES_API}% in spec.chart and spec.repo, for charts the
	// server serves under /static/; APITLS is how to fetch them: the server CA and the
	// controller's client certificate (the path is behind the apiserver's authorization).
	API    string
	APITLS TLSFiles
	Log    *slog.Logger
}

// TLSFiles are PEM files.
type TLSFiles struct{ CA, Cert, Key string }

// APIPlaceholder in a chart URL is the server's apiserver, as in k3s.
const APIPlaceholder = "%{KUBERNETES_API}%"

// apiChart resolves the placeholder in spec.chart and spec.repo. A chart from the apiserver
// must lie under /static/: the controller fetches it as cluster admin, and must not fetch API
// objects as a "chart" for whoever wrote the HelmChart.
func (r *Releaser) apiChart(hc *helmv1.HelmChart) (chartRef, repo string, fromAPI bool, err error) {
	chartRef, repo = hc.Spec.Chart, hc.Spec.Repo
	for _, ref := range []*string{&chartRef, &repo} {
		if !strings.Contains(*ref, APIPlaceholder) {
			continue
		}
		if r.API == "" {
			return "", "", false, fmt.Errorf("%s: this server does not serve charts", APIPlaceholder)
		}
		*ref = strings.ReplaceAll(*ref, APIPlaceholder, r.API)
		u, err := url.Parse(*ref)
		if err != nil || u.Scheme != "https" || u.Host != r.API || u.User != nil || !strings.HasPrefix(path.Clean(u.Path), "/static/") || u.RawQuery != "" {
			return "", "", false, fmt.Errorf("%q: a chart from %s lies under https://%s/static/", *ref, APIPlaceholder, APIPlaceholder)
		}
		fromAPI = true
	}
	if fromAPI && chartRef != "" && repo != "" && !strings.Contains(hc.Spec.Repo, APIPlaceholder) {
		// The admin certificate must go only to the apiserver: a chart name looked up in
		// another repository would be fetched with it.
		return "", "", false, fmt.Errorf("spec.repo %q: with %s in spec.chart, the repository must be the apiserver's too", repo, APIPlaceholder)
	}
	return chartRef, repo, fromAPI, nil
}

func (r *Releaser) timeout(hc *helmv1.HelmChart) time.Duration {
	if hc.Spec.Timeout != nil && hc.Spec.Timeout.Duration > 0 {
		return hc.Spec.Timeout.Duration
	}
	if r.Timeout > 0 {
		return r.Timeout
	}
	return 5 * time.Minute
}

// TargetNamespace is where the release's objects go.
func TargetNamespace(hc *helmv1.HelmChart) string {
	if hc.Spec.TargetNamespace != "" {
		return hc.Spec.TargetNamespace
	}
	return hc.Namespace
}

// config is Helm's for a chart, its release records held to their ledger (records.go);
// registryCreds is a docker config.json for OCI charts ("" for the cache's own).
func (r *Releaser) config(ctx context.Context, hc *helmv1.HelmChart, registryCreds string) (*action.Configuration, *guard, error) {
	cfg, err := r.helmConfig(hc, registryCreds)
	if err != nil {
		return nil, nil, err
	}
	cs, err := cfg.KubernetesClientSet()
	if err != nil {
		return nil, nil, fmt.Errorf("helm: %w", err)
	}
	g, err := newGuard(ctx, cs, cfg.Releases.Driver, hc)
	if err != nil {
		return nil, nil, err
	}
	cfg.Releases.Driver = g
	return cfg, g, nil
}

// helmConfig puts the chart's objects in its target namespace and the release records in its
// own (StorageNamespace). Records an older Outpost left in the target namespace are not read:
// the release counts as not installed, and the install adopts its objects (their Helm
// annotations name the same release and namespace); only its hooks run again.
func (r *Releaser) helmConfig(hc *helmv1.HelmChart, registryCreds string) (*action.Configuration, error) {
	ns := TargetNamespace(hc)
	storage := "secret" // spec.driver: where release records go, as in k3s
	if hc.Spec.Driver == helmv1.HelmDriver("configmap") {
		storage = "configmap"
	}
	flags := genericclioptions.NewConfigFlags(false)
	kc := r.Kubeconfig
	// Discovery's disk cache goes under the data dir, not the server's $HOME.
	cache := filepath.Join(r.CacheDir, "discovery")
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &kc, &ns, &cache
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, StorageNamespace(hc), storage, func(format string, v ...any) { r.Log.Debug(fmt.Sprintf(format, v...)) }); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	if registryCreds == "" {
		registryCreds = filepath.Join(r.CacheDir, "registry.json")
	}
	rc, err := registry.NewClient(registry.ClientOptCredentialsFile(registryCreds))
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	cfg.RegistryClient = rc
	return cfg, nil
}

// private writes a file only root reads, under the cache, for one HelmChart (names cannot
// collide: a namespace holds no "/").
func (r *Releaser) private(kind string, hc *helmv1.HelmChart, body []byte) (string, error) {
	p := filepath.Join(r.CacheDir, kind, hc.Namespace, hc.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("helm cache: %w", err)
	}
	if err := os.WriteFile(p, body, 0o600); err != nil {
		return "", fmt.Errorf("helm cache: %w", err)
	}
	return p, nil
}

// chart loads the inline archive, or fetches spec.chart (a name in spec.repo, a URL, or an
// oci:// reference) into the cache.
func (r *Releaser) chart(in *Inputs, cfg *action.Configuration) (*chart.Chart, error) {
	hc := in.Chart
	if hc.Spec.ChartContent != "" {
		b, err := ChartArchive(hc)
		if err != nil {
			return nil, err
		}
		c, err := loader.LoadArchive(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("spec.chartContent: %w", err)
		}
		return c, nil
	}
	if hc.Spec.Chart == "" {
		return nil, errors.New("neither spec.chart nor spec.chartContent is set")
	}
	chartRef, repo, fromAPI, err := r.apiChart(hc)
	if err != nil {
		return nil, err
	}
	settings := cli.New()
	settings.RepositoryCache = filepath.Join(r.CacheDir, "repository")
	settings.RepositoryConfig = filepath.Join(r.CacheDir, "repositories.yaml")
	settings.RegistryConfig = filepath.Join(r.CacheDir, "registry.json")
	o := action.NewInstall(cfg).ChartPathOptions
	o.RepoURL, o.Version = repo, hc.Spec.Version
	o.InsecureSkipTLSverify, o.PlainHTTP = hc.Spec.InsecureSkipTLSVerify, hc.Spec.PlainHTTP
	o.PassCredentialsAll, o.Username, o.Password = hc.Spec.AuthPassCredentials, in.Username, in.Password
	if len(strings.TrimSpace(string(in.CA))) > 0 {
		ca, err := r.private("ca", hc, in.CA)
		if err != nil {
			return nil, err
		}
		o.CaFile = ca
	}
	if fromAPI {
		o.CaFile, o.CertFile, o.KeyFile, o.InsecureSkipTLSverify, o.PlainHTTP = r.APITLS.CA, r.APITLS.Cert, r.APITLS.Key, false, false
		o.Username, o.Password = "", ""
	}
	file, err := o.LocateChart(chartRef, settings)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %q: %w", hc.Spec.Chart, err)
	}
	c, err := loader.Load(file)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", file, err)
	}
	return c, nil
}

// Apply brings the release named after the HelmChart in line with it: installed when there is
// none, upgraded when its config changed, reinstalled when no revision ever deployed (Helm
// cannot upgrade those), left alone otherwise.
//
// A release whose last operation failed is handled by the failure policy, as in k3s:
// reinstall (the default) uninstalls and installs it again; retry tries again only once the
// config changed; abort leaves it for the administrator.
func (r *Releaser) Apply(ctx context.Context, in *Inputs) (Outcome, error) {
	hc := in.Chart
	if err := in.validPolicy(); err != nil {
		return "", err
	}
	ns := TargetNamespace(hc)
	hash := ConfigHash(in)
	creds := ""
	if len(in.DockerConfig) > 0 {
		var err error
		if creds, err = r.private("registry", hc, in.DockerConfig); err != nil {
			return "", err
		}
	}
	cfg, g, err := r.config(ctx, hc, creds)
	if err != nil {
		return "", err
	}
	hist, err := action.NewHistory(cfg).Run(hc.Name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		// No records (deleted, or in the target namespace where an older Outpost kept them):
		// digests of records gone must not vouch for copies of them.
		if err := g.ledger.reset(); err != nil {
			return "", err
		}
	case err != nil:
		return "", fmt.Errorf("release history: %w", err)
	}
	var last *release.Release
	deployed := false
	for _, rel := range hist {
		if last == nil || rel.Version > last.Version {
			last = rel
		}
		if rel.Info != nil && (rel.Info.Status == release.StatusDeployed || rel.Info.Status == release.StatusSuperseded) {
			deployed = true
		}
	}
	if last != nil && last.Info != nil && last.Info.Status == release.StatusDeployed && last.Labels[HashLabel] == hash {
		return Unchanged, nil
	}
	failed := last != nil && last.Info != nil && last.Info.Status == release.StatusFailed
	if failed {
		switch in.FailurePolicy() {
		case helmv1.FailurePolicyAbort:
			return "", &HeldError{fmt.Sprintf("release %s/%s revision %d failed (%s) and failurePolicy is abort: delete the HelmChart and create it again to have it installed afresh",
				ns, hc.Name, last.Version, last.Info.Description)}
		case helmv1.FailurePolicyRetry:
			if last.Labels[HashLabel] == hash {
				return "", &HeldError{fmt.Sprintf("release %s/%s revision %d failed (%s); failurePolicy retry: tried again when the HelmChart changes",
					ns, hc.Name, last.Version, last.Info.Description)}
			}
		}
	}
	vals, err := Values(in)
	if err != nil {
		return "", err
	}
	ch, err := r.chart(in, cfg)
	if err != nil {
		return "", err
	}
	// An operation this process did not finish (it was stopped) left the release pending:
	// Helm refuses to touch it until it is marked failed.
	if last != nil && last.Info != nil && last.Info.Status.IsPending() {
		last.SetStatus(release.StatusFailed, "interrupted: the server stopped during the operation")
		if err := cfg.Releases.Update(last); err != nil {
			return "", fmt.Errorf("mark interrupted release failed: %w", err)
		}
	}
	labels := map[string]string{HashLabel: hash}
	out := Upgraded
	switch {
	case last == nil:
		out = Installed
	case !deployed, failed && in.FailurePolicy() == helmv1.FailurePolicyReinstall:
		if err := r.uninstall(cfg, hc); err != nil {
			return "", err
		}
		out = Reinstalled
	}
	if out != Upgraded {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace = hc.Name, ns, hc.Spec.CreateNamespace
		in.Timeout, in.TakeOwnership, in.Labels = r.timeout(hc), hc.Spec.TakeOwnership, labels
		if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
			return "", fmt.Errorf("install: %w", err)
		}
		return out, nil
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout, up.MaxHistory, up.TakeOwnership, up.Labels = ns, r.timeout(hc), 10, hc.Spec.TakeOwnership, labels
	if _, err := up.RunWithContext(ctx, hc.Name, ch, vals); err != nil {
		return "", fmt.Errorf("upgrade: %w", err)
	}
	return out, nil
}

// Remove uninstalls the release; one that is not there is removed already. The chart's
// ledger, cached credentials and CA go with it.
func (r *Releaser) Remove(ctx context.Context, hc *helmv1.HelmChart) error {
	cfg, g, err := r.config(ctx, hc, "")
	if err != nil {
		return err
	}
	if err := r.uninstall(cfg, hc); err != nil {
		return err
	}
	if err := g.ledger.remove(); err != nil {
		return err
	}
	for _, kind := range []string{"ca", "registry"} {
		if err := os.Remove(filepath.Join(r.CacheDir, kind, hc.Namespace, hc.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("helm cache: %w", err)
		}
	}
	return nil
}

func (r *Releaser) uninstall(cfg *action.Configuration, hc *helmv1.HelmChart) error {
	un := action.NewUninstall(cfg)
	un.Timeout = r.timeout(hc)
	if _, err := un.Run(hc.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}

// HeldError is a release the failure policy keeps as it is: reported, not retried until the
// HelmChart changes.
type HeldError struct{ msg string }

func (e *HeldError) Error() string { return e.msg }
