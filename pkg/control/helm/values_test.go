package helm

import (
	"reflect"
	"strings"
	"testing"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The HelmChart's values, then the HelmChartConfig's, then set; later wins key by key.
func TestValuesOrder(t *testing.T) {
	hc := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{
		ValuesContent: "a: 1\nnested: {x: chart, z: chart}\nkeep: kept\n",
		Values:        &apiextv1.JSON{Raw: []byte(`{"b": "values"}`)},
		Set:           map[string]intstr.IntOrString{"nested.z": intstr.FromString("set"), "n": intstr.FromInt32(3)},
	}}
	cfg := &helmv1.HelmChartConfig{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: helmv1.HelmChartConfigSpec{ValuesContent: "a: 2\nnested: {x: config}\n"}}
	got, err := Values(&Inputs{Chart: hc, Config: cfg,
		ChartValues:  []Layer{{What: "s", YAML: []byte("b: secret\nkeep: kept\n")}},
		ConfigValues: []Layer{{What: "cs", YAML: []byte("nested: {w: config-secret}\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": float64(2), "b": "secret", "keep": "kept", "n": int64(3),
		"nested": map[string]any{"x": "config", "w": "config-secret", "z": "set"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if _, err := Values(&Inputs{Chart: &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{ValuesContent: "a: [\n"}}}); err == nil {
		t.Error("bad valuesContent accepted")
	}
	_, err = Values(&Inputs{Chart: &helmv1.HelmChart{}, ChartValues: []Layer{{What: "spec.valuesSecrets[0] v/k", YAML: []byte("a: [\n")}}})
	if err == nil || !strings.Contains(err.Error(), "spec.valuesSecrets[0] v/k") {
		t.Errorf("a bad values Secret must be named: %v", err)
	}
}

func TestConfigHashFollowsSpecs(t *testing.T) {
	a := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 1"}}
	b := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 2"}}
	cfg := &helmv1.HelmChartConfig{Spec: helmv1.HelmChartConfigSpec{ValuesContent: "z: 1"}}
	again := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 1"}}
	h := func(hc *helmv1.HelmChart, cfg *helmv1.HelmChartConfig, layers ...Layer) string {
		return ConfigHash(&Inputs{Chart: hc, Config: cfg, ChartValues: layers})
	}
	if h(a, nil) == h(b, nil) || h(a, nil) == h(a, cfg) || h(a, cfg) != h(again, cfg) {
		t.Error("hash does not follow the specs")
	}
	// A watched values Secret's content changes the hash (an upgrade); an ignored one not.
	if h(a, nil, Layer{YAML: []byte("x: 1"), Watched: true}) == h(a, nil, Layer{YAML: []byte("x: 2"), Watched: true}) {
		t.Error("a watched values Secret's change does not upgrade")
	}
	if h(a, nil, Layer{YAML: []byte("x: 1")}) != h(a, nil, Layer{YAML: []byte("x: 2")}) {
		t.Error("an ignoreUpdates values Secret's change upgrades")
	}
	if len(h(a, nil)) > 63 {
		t.Error("hash too long for a label value")
	}
}

func TestChartArchiveRefusesNonBase64(t *testing.T) {
	if _, err := ChartArchive(&helmv1.HelmChart{Spec: helmv1.HelmChartSpec{ChartContent: "%%%"}}); err == nil {
		t.Error("accepted")
	}
}
