package helm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// Values merges what a chart is installed with, in helm-controller's order: the HelmChart's
// valuesContent, then its values, then the HelmChartConfig's valuesContent and values (the
// site's overrides), then each --set entry (ints stay ints, strings stay strings). A later
// source wins key by key.
func Values(hc *helmv1.HelmChart, cfg *helmv1.HelmChartConfig) (map[string]any, error) {
	out := map[string]any{}
	layer := func(what, content string, raw []byte) error {
		for _, src := range [][]byte{[]byte(content), raw} {
			if len(strings.TrimSpace(string(src))) == 0 {
				continue
			}
			m := map[string]any{}
			if err := yaml.Unmarshal(src, &m); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			merge(out, m)
		}
		return nil
	}
	var raw []byte
	if hc.Spec.Values != nil {
		raw = hc.Spec.Values.Raw
	}
	if err := layer("spec.valuesContent/values", hc.Spec.ValuesContent, raw); err != nil {
		return nil, err
	}
	if cfg != nil {
		raw = nil
		if cfg.Spec.Values != nil {
			raw = cfg.Spec.Values.Raw
		}
		if err := layer("HelmChartConfig "+cfg.Name, cfg.Spec.ValuesContent, raw); err != nil {
			return nil, err
		}
	}
	for k, v := range hc.Spec.Set {
		var err error
		if v.Type == 0 { // intstr.Int
			err = strvals.ParseInto(fmt.Sprintf("%s=%d", k, v.IntVal), out)
		} else {
			err = strvals.ParseIntoString(fmt.Sprintf("%s=%s", k, v.StrVal), out)
		}
		if err != nil {
			return nil, fmt.Errorf("spec.set[%s]: %w", k, err)
		}
	}
	return out, nil
}

// merge copies src into dst, descending into maps both have.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// ChartArchive decodes an inline chart (spec.chartContent, base64 of a .tgz).
func ChartArchive(hc *helmv1.HelmChart) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(hc.Spec.ChartContent))
	if err != nil {
		return nil, fmt.Errorf("spec.chartContent is not base64: %w", err)
	}
	return b, nil
}

// ConfigHash names what a release was made from: the HelmChart's spec and its config's. A
// release carrying the same hash needs no upgrade.
func ConfigHash(hc *helmv1.HelmChart, cfg *helmv1.HelmChartConfig) string {
	h := sha256.New()
	b, _ := json.Marshal(hc.Spec)
	h.Write(b)
	if cfg != nil {
		b, _ = json.Marshal(cfg.Spec)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
