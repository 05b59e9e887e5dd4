package helm

import (
	"strings"
	"testing"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
)

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
