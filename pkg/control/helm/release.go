package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
// stored as Secrets in the target namespace, as the helm CLI stores them.
type Releaser struct {
	Kubeconfig string // charts may create anything: a cluster-admin identity
	CacheDir   string // repository index and chart downloads
	Timeout    time.Duration
	Log        *slog.Logger
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

// TargetNamespace is where the release and its objects go.
func TargetNamespace(hc *helmv1.HelmChart) string {
	if hc.Spec.TargetNamespace != "" {
		return hc.Spec.TargetNamespace
	}
	return hc.Namespace
}

func (r *Releaser) config(ns string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	kc := r.Kubeconfig
	// Discovery's disk cache goes under the data dir, not the server's $HOME.
	cache := filepath.Join(r.CacheDir, "discovery")
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &kc, &ns, &cache
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", func(format string, v ...any) { r.Log.Debug(fmt.Sprintf(format, v...)) }); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	rc, err := registry.NewClient(registry.ClientOptCredentialsFile(filepath.Join(r.CacheDir, "registry.json")))
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	cfg.RegistryClient = rc
	return cfg, nil
}

// chart loads the inline archive, or fetches spec.chart (a name in spec.repo, a URL, or an
// oci:// reference) into the cache.
func (r *Releaser) chart(hc *helmv1.HelmChart, cfg *action.Configuration) (*chart.Chart, error) {
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
	settings := cli.New()
	settings.RepositoryCache = filepath.Join(r.CacheDir, "repository")
	settings.RepositoryConfig = filepath.Join(r.CacheDir, "repositories.yaml")
	settings.RegistryConfig = filepath.Join(r.CacheDir, "registry.json")
	in := action.NewInstall(cfg)
	in.ChartPathOptions.RepoURL = hc.Spec.Repo
	in.ChartPathOptions.Version = hc.Spec.Version
	in.ChartPathOptions.InsecureSkipTLSverify = hc.Spec.InsecureSkipTLSVerify
	in.ChartPathOptions.PlainHTTP = hc.Spec.PlainHTTP
	in.ChartPathOptions.PassCredentialsAll = hc.Spec.AuthPassCredentials
	if hc.Spec.RepoCA != "" {
		ca := filepath.Join(r.CacheDir, "ca", hc.Namespace+"-"+hc.Name+".crt")
		if err := os.MkdirAll(filepath.Dir(ca), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(ca, []byte(hc.Spec.RepoCA), 0o600); err != nil {
			return nil, err
		}
		in.ChartPathOptions.CaFile = ca
	}
	path, err := in.ChartPathOptions.LocateChart(hc.Spec.Chart, settings)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %q: %w", hc.Spec.Chart, err)
	}
	c, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", path, err)
	}
	return c, nil
}

// Apply brings the release named after the HelmChart in line with it: installed when there is
// none, upgraded when its config changed, reinstalled when no revision ever deployed (Helm
// cannot upgrade those), left alone otherwise.
func (r *Releaser) Apply(ctx context.Context, hc *helmv1.HelmChart, hcc *helmv1.HelmChartConfig) (Outcome, error) {
	ns := TargetNamespace(hc)
	hash := ConfigHash(hc, hcc)
	cfg, err := r.config(ns)
	if err != nil {
		return "", err
	}
	hist, err := action.NewHistory(cfg).Run(hc.Name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
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
	vals, err := Values(hc, hcc)
	if err != nil {
		return "", err
	}
	ch, err := r.chart(hc, cfg)
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
	case !deployed:
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

// Remove uninstalls the release; one that is not there is removed already.
func (r *Releaser) Remove(hc *helmv1.HelmChart) error {
	cfg, err := r.config(TargetNamespace(hc))
	if err != nil {
		return err
	}
	return r.uninstall(cfg, hc)
}

func (r *Releaser) uninstall(cfg *action.Configuration, hc *helmv1.HelmChart) error {
	un := action.NewUninstall(cfg)
	un.Timeout = r.timeout(hc)
	if _, err := un.Run(hc.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}
