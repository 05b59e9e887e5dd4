package helm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Inputs are a HelmChart, its HelmChartConfig, and what they name in the HelmChart's
// namespace, read at each sync: values Secrets, the repository's credentials and CA, the
// OCI registry's credentials.
type Inputs struct {
	Chart  *helmv1.HelmChart
	Config *helmv1.HelmChartConfig
	// ChartValues and ConfigValues come from spec.valuesSecrets, in the order named.
	ChartValues, ConfigValues []Layer
	Username, Password        string // spec.authSecret
	CA                        []byte // spec.repoCA and spec.repoCAConfigMap
	DockerConfig              []byte // spec.dockerRegistrySecret (.dockerconfigjson)
}

// Layer is one values file: What names its source in errors. A Watched layer's content is
// part of the config hash, so a change upgrades the release; ignoreUpdates layers are not.
type Layer struct {
	What    string
	YAML    []byte
	Watched bool
}

// Resolve reads what hc and hcc reference. A missing object is an error naming it, except a
// values Secret with ignoreUpdates, which is optional (as in k3s).
func Resolve(ctx context.Context, client kubernetes.Interface, hc *helmv1.HelmChart, hcc *helmv1.HelmChartConfig) (*Inputs, error) {
	in := &Inputs{Chart: hc, Config: hcc}
	ns := hc.Namespace
	secret := func(field, name string) (*corev1.Secret, error) {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s: Secret %s/%s: %w", field, ns, name, err)
		}
		return s, nil
	}
	var err error
	if in.ChartValues, err = valuesLayers(ctx, client, ns, "spec.valuesSecrets", hc.Spec.ValuesSecrets); err != nil {
		return nil, err
	}
	if hcc != nil {
		if in.ConfigValues, err = valuesLayers(ctx, client, ns, "HelmChartConfig spec.valuesSecrets", hcc.Spec.ValuesSecrets); err != nil {
			return nil, err
		}
	}
	if ref := hc.Spec.AuthSecret; ref != nil {
		s, err := secret("spec.authSecret", ref.Name)
		if err != nil {
			return nil, err
		}
		in.Username, in.Password = string(s.Data[corev1.BasicAuthUsernameKey]), string(s.Data[corev1.BasicAuthPasswordKey])
		if in.Username == "" {
			return nil, fmt.Errorf("spec.authSecret: Secret %s/%s has no %q key (type kubernetes.io/basic-auth)", ns, ref.Name, corev1.BasicAuthUsernameKey)
		}
	}
	in.CA = []byte(hc.Spec.RepoCA)
	if ref := hc.Spec.RepoCAConfigMap; ref != nil {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("spec.repoCAConfigMap: ConfigMap %s/%s: %w", ns, ref.Name, err)
		}
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			in.CA = append(append(in.CA, '\n'), cm.Data[k]...)
		}
	}
	if ref := hc.Spec.DockerRegistrySecret; ref != nil {
		s, err := secret("spec.dockerRegistrySecret", ref.Name)
		if err != nil {
			return nil, err
		}
		if in.DockerConfig = s.Data[corev1.DockerConfigJsonKey]; len(in.DockerConfig) == 0 {
			return nil, fmt.Errorf("spec.dockerRegistrySecret: Secret %s/%s has no %q key (type kubernetes.io/dockerconfigjson)", ns, ref.Name, corev1.DockerConfigJsonKey)
		}
	}
	return in, nil
}

func valuesLayers(ctx context.Context, client kubernetes.Interface, ns, field string, specs []helmv1.SecretSpec) ([]Layer, error) {
	var out []Layer
	for i, spec := range specs {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, spec.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && spec.IgnoreUpdates {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: Secret %s/%s: %w", field, i, ns, spec.Name, err)
		}
		for _, k := range spec.Keys {
			v, ok := s.Data[k]
			if !ok {
				if spec.IgnoreUpdates {
					continue
				}
				return nil, fmt.Errorf("%s[%d]: Secret %s/%s has no key %q", field, i, ns, spec.Name, k)
			}
			out = append(out, Layer{What: fmt.Sprintf("%s[%d] %s/%s", field, i, spec.Name, k), YAML: v, Watched: !spec.IgnoreUpdates})
		}
	}
	return out, nil
}

// FailurePolicy is the config's, else the chart's, else reinstall.
func (in *Inputs) FailurePolicy() helmv1.FailurePolicy {
	if in.Config != nil && in.Config.Spec.FailurePolicy != "" {
		return in.Config.Spec.FailurePolicy
	}
	if p := in.Chart.Spec.FailurePolicy; p != "" {
		return p
	}
	return helmv1.FailurePolicyReinstall
}

// validPolicy reports an unknown failurePolicy by name.
func (in *Inputs) validPolicy() error {
	switch p := in.FailurePolicy(); p {
	case helmv1.FailurePolicyAbort, helmv1.FailurePolicyReinstall, helmv1.FailurePolicyRetry:
		return nil
	default:
		return fmt.Errorf("failurePolicy %q: use %s", p, strings.Join([]string{"reinstall", "retry", "abort"}, ", "))
	}
}
