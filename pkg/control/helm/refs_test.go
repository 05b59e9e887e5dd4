package helm

import (
	"context"
	"strings"
	"testing"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestResolveReadsReferences(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "apps", Name: name} }
	client := fake.NewClientset(
		&corev1.Secret{ObjectMeta: meta("repo-auth"), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"username": []byte("u"), "password": []byte("p")}},
		&corev1.Secret{ObjectMeta: meta("vals"), Data: map[string][]byte{"a.yaml": []byte("a: 1"), "b.yaml": []byte("b: 2")}},
		&corev1.Secret{ObjectMeta: meta("oci"), Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}},
		&corev1.ConfigMap{ObjectMeta: meta("ca"), Data: map[string]string{"ca.crt": "PEM-B"}},
	)
	ref := func(n string) *corev1.LocalObjectReference { return &corev1.LocalObjectReference{Name: n} }
	hc := &helmv1.HelmChart{ObjectMeta: meta("app"), Spec: helmv1.HelmChartSpec{
		AuthSecret: ref("repo-auth"), RepoCA: "PEM-A", RepoCAConfigMap: ref("ca"), DockerRegistrySecret: ref("oci"),
		ValuesSecrets: []helmv1.SecretSpec{{Name: "vals", Keys: []string{"b.yaml", "a.yaml"}}, {Name: "gone", Keys: []string{"x"}, IgnoreUpdates: true}},
	}}
	hcc := &helmv1.HelmChartConfig{ObjectMeta: meta("app"), Spec: helmv1.HelmChartConfigSpec{
		ValuesSecrets: []helmv1.SecretSpec{{Name: "vals", Keys: []string{"a.yaml", "missing.yaml"}, IgnoreUpdates: true}}}}
	in, err := Resolve(context.Background(), client, hc, hcc)
	if err != nil {
		t.Fatal(err)
	}
	if in.Username != "u" || in.Password != "p" || string(in.CA) != "PEM-A\nPEM-B" || string(in.DockerConfig) != `{"auths":{}}` {
		t.Errorf("resolved %+v", in)
	}
	// In the order named; an optional (ignoreUpdates) Secret or key that is missing is skipped.
	if len(in.ChartValues) != 2 || string(in.ChartValues[0].YAML) != "b: 2" || !in.ChartValues[0].Watched {
		t.Errorf("chart values %+v", in.ChartValues)
	}
	if len(in.ConfigValues) != 1 || in.ConfigValues[0].Watched {
		t.Errorf("config values %+v", in.ConfigValues)
	}
	for name, spec := range map[string]helmv1.HelmChartSpec{
		"spec.authSecret":           {AuthSecret: ref("none")},
		"spec.repoCAConfigMap":      {RepoCAConfigMap: ref("none")},
		"spec.dockerRegistrySecret": {DockerRegistrySecret: ref("vals")},
		"spec.valuesSecrets[0]":     {ValuesSecrets: []helmv1.SecretSpec{{Name: "vals", Keys: []string{"none.yaml"}}}},
	} {
		_, err := Resolve(context.Background(), client, &helmv1.HelmChart{ObjectMeta: meta("x"), Spec: spec}, nil)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFailurePolicy(t *testing.T) {
	in := &Inputs{Chart: &helmv1.HelmChart{}}
	if in.FailurePolicy() != helmv1.FailurePolicyReinstall || in.validPolicy() != nil {
		t.Error("default is reinstall")
	}
	in.Chart.Spec.FailurePolicy = "retry"
	in.Config = &helmv1.HelmChartConfig{Spec: helmv1.HelmChartConfigSpec{FailurePolicy: "abort"}}
	if in.FailurePolicy() != helmv1.FailurePolicyAbort {
		t.Error("the HelmChartConfig's policy wins")
	}
	in.Config.Spec.FailurePolicy = "sometimes"
	if err := in.validPolicy(); err == nil || !strings.Contains(err.Error(), `"sometimes"`) {
		t.Errorf("unknown policy: %v", err)
	}
}
