package helm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/strvals"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Values merges what a chart is installed with, in helm-controller's order: the HelmChart's
// valuesContent, values and valuesSecrets, then the HelmChartConfig's (the site's overrides),
// then each --set entry (ints stay ints, strings stay strings). A later source wins key by key.
func Values(in *Inputs) (map[string]any, error) {
	hc, cfg := in.Chart, in.Config
	out := map[string]any{}
	layer := func(what string, src []byte) error {
		if len(strings.TrimSpace(string(src))) == 0 {
			return nil
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(src, &m); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		merge(out, m)
		return nil
	}
	layers := func(what, content string, raw *apiextv1.JSON, secrets []Layer) error {
		if err := layer(what+" valuesContent", []byte(content)); err != nil {
			return err
		}
		if raw != nil {
			if err := layer(what+" values", raw.Raw); err != nil {
				return err
			}
		}
		for _, l := range secrets {
			if err := layer(l.What, l.YAML); err != nil {
				return err
			}
		}
		return nil
	}
	if err := layers("spec", hc.Spec.ValuesContent, hc.Spec.Values, in.ChartValues); err != nil {
		return nil, err
	}
	if cfg != nil {
		if err := layers("HelmChartConfig "+cfg.Name, cfg.Spec.ValuesContent, cfg.Spec.Values, in.ConfigValues); err != nil {
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

// ConfigHash names what a release was made from: the HelmChart's spec, its config's, and the
// watched values Secrets' content. A release carrying the same hash needs no upgrade.
func ConfigHash(in *Inputs) string {
	h := sha256.New()
	b, _ := json.Marshal(in.Chart.Spec)
	h.Write(b)
	if in.Config != nil {
		b, _ = json.Marshal(in.Config.Spec)
		h.Write(b)
	}
	for _, l := range append(slices.Clone(in.ChartValues), in.ConfigValues...) {
		if l.Watched {
			fmt.Fprintf(h, "\x00%s\x00%d\x00", l.What, len(l.YAML))
			h.Write(l.YAML)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
