package helm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Release records go where the HelmChart is (tenants of the target namespace may write
// Secrets there), the chart's objects to the target namespace.
func TestRecordsLiveWithTheChart(t *testing.T) {
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case paths <- r.URL.Path:
		default:
		}
		kind := "SecretList"
		if strings.HasSuffix(r.URL.Path, "/configmaps") {
			kind = "ConfigMapList"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"kind":%q,"apiVersion":"v1","items":[]}`, kind)
	}))
	defer srv.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "+srv.URL+"}}]\n"+
		"contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Releaser{Kubeconfig: kc, CacheDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}
	for _, storage := range []string{"secrets", "configmaps"} {
		hc := &helmv1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "app"}, Spec: helmv1.HelmChartSpec{TargetNamespace: "team"}}
		if storage == "configmaps" {
			hc.Spec.Driver = "configmap"
		}
		cfg, err := r.helmConfig(hc, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Releases.History("app"); !errors.Is(err, driver.ErrReleaseNotFound) {
			t.Errorf("%s: %v", storage, err)
		}
		if p := <-paths; p != "/api/v1/namespaces/kube-system/"+storage {
			t.Errorf("records read from %s", p)
		}
		if ns, _, err := cfg.KubeClient.(*kube.Client).Factory.ToRawKubeConfigLoader().Namespace(); err != nil || ns != "team" {
			t.Errorf("objects go to %q (%v), want the target namespace", ns, err)
		}
	}
}

func TestAPIPlaceholderOnlyReachesStatic(t *testing.T) {
	r := &Releaser{API: "127.0.0.1:6443"}
	hc := func(chart, repo string) *helmv1.HelmChart {
		return &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: chart, Repo: repo}}
	}
	chart, _, fromAPI, err := r.apiChart(hc("https://%{KUBERNETES_API}%/static/charts/app-1.0.0.tgz", ""))
	if err != nil || !fromAPI || chart != "https://127.0.0.1:6443/static/charts/app-1.0.0.tgz" {
		t.Errorf("static chart: %q %v %v", chart, fromAPI, err)
	}
	if _, repo, fromAPI, err := r.apiChart(hc("app", "https://%{KUBERNETES_API}%/static/repo")); err != nil || !fromAPI || repo != "https://127.0.0.1:6443/static/repo" {
		t.Errorf("static repo: %q %v %v", repo, fromAPI, err)
	}
	// The admin identity must not fetch anything else for the HelmChart's author.
	for _, bad := range []string{"https://%{KUBERNETES_API}%/api/v1/secrets", "https://%{KUBERNETES_API}%/static/../api/v1/secrets",
		"http://%{KUBERNETES_API}%/static/charts/a.tgz", "https://%{KUBERNETES_API}%.evil.example/static/a.tgz", "https://%{KUBERNETES_API}%/static/a.tgz?x=1"} {
		if _, _, _, err := r.apiChart(hc(bad, "")); err == nil || !strings.Contains(err.Error(), "/static/") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if chart, _, fromAPI, err := r.apiChart(hc("https://charts.example/app.tgz", "")); err != nil || fromAPI || chart != "https://charts.example/app.tgz" {
		t.Errorf("a plain URL changed: %q %v %v", chart, fromAPI, err)
	}
	if _, _, _, err := r.apiChart(hc("https://%{KUBERNETES_API}%/static/a.tgz", "https://other.example/charts")); err == nil {
		t.Error("a chart from the apiserver with another repository: the admin certificate would go there")
	}
	if _, _, _, err := r.apiChart(hc("app", "https://u:p@%{KUBERNETES_API}%/static/repo")); err == nil {
		t.Error("user info in the apiserver URL accepted")
	}
	if _, _, _, err := (&Releaser{}).apiChart(hc("https://%{KUBERNETES_API}%/static/a.tgz", "")); err == nil {
		t.Error("no API address, yet the placeholder resolved")
	}
}
