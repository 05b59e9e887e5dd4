package helm

import (
	"reflect"
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
	got, err := Values(hc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": float64(2), "b": "values", "keep": "kept", "n": int64(3),
		"nested": map[string]any{"x": "config", "z": "set"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if _, err := Values(&helmv1.HelmChart{Spec: helmv1.HelmChartSpec{ValuesContent: "a: [\n"}}, nil); err == nil {
		t.Error("bad valuesContent accepted")
	}
}

func TestConfigHashFollowsSpecs(t *testing.T) {
	a := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 1"}}
	b := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 2"}}
	cfg := &helmv1.HelmChartConfig{Spec: helmv1.HelmChartConfigSpec{ValuesContent: "z: 1"}}
	again := &helmv1.HelmChart{Spec: helmv1.HelmChartSpec{Chart: "x", ValuesContent: "a: 1"}}
	if ConfigHash(a, nil) == ConfigHash(b, nil) || ConfigHash(a, nil) == ConfigHash(a, cfg) || ConfigHash(a, cfg) != ConfigHash(again, cfg) {
		t.Error("hash does not follow the specs")
	}
	if len(ConfigHash(a, nil)) > 63 {
		t.Error("hash too long for a label value")
	}
}

func TestChartArchiveRefusesNonBase64(t *testing.T) {
	if _, err := ChartArchive(&helmv1.HelmChart{Spec: helmv1.HelmChartSpec{ChartContent: "%%%"}}); err == nil {
		t.Error("accepted")
	}
}
