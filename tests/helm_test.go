package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/tests/harness"
)

// testChart is a small chart of the project's test image: a Deployment whose replica count
// and "message" label come from values.
func testChart(t *testing.T, img string) []byte {
	t.Helper()
	files := map[string]string{
		"outpost-test/Chart.yaml":  "apiVersion: v2\nname: outpost-test\nversion: 0.1.0\n",
		"outpost-test/values.yaml": "replicas: 1\nmessage: one\nimage: " + img + "\n",
		"outpost-test/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels: {message: {{ .Values.message | quote }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}-web}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: web, image: {{ .Values.image | quote }}, imagePullPolicy: Never, args: [serve]}
`,
	}
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"outpost-test/Chart.yaml", "outpost-test/values.yaml", "outpost-test/templates/deployment.yaml"} {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// helmChecks: a HelmChart with an inline chart installs a Deployment that becomes Ready;
// changing its values upgrades it; a chart that cannot be read gets the Failed condition and
// an Event; deleting the HelmChart uninstalls the release. The helm CLI then installs and
// uninstalls the same chart with the admin kubeconfig, and lists the controller's release.
// A chart dropped in the server's static/charts dir installs from
// https://%{KUBERNETES_API}%/static/charts/, which only authorized users can read.
func helmChecks(t *testing.T, kubectl func(...string) (string, error), kubeconfig, dataDir, img string) {
	t.Helper()
	dir := t.TempDir()
	tgz := testChart(t, img)
	apply := func(name, y string) {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		os.WriteFile(f, []byte(y), 0o600)
		if out, err := kubectl("apply", "-f", f); err != nil {
			t.Fatalf("apply %s: %v: %s", name, err, out)
		}
	}
	chart := func(values string) string {
		return fmt.Sprintf("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: hello, namespace: default}\nspec:\n"+
			"  targetNamespace: helm-test\n  createNamespace: true\n  chartContent: %s\n  valuesContent: |\n    %s\n",
			base64.StdEncoding.EncodeToString(tgz), strings.ReplaceAll(values, "\n", "\n    "))
	}
	harness.Eventually(t, 2*time.Minute, "HelmChart CRD served", func() error {
		_, err := kubectl("get", "helmcharts", "-A")
		return err
	})
	deployment := func(what string, replicas int, message string) {
		t.Helper()
		harness.Eventually(t, 2*time.Minute, what, func() error {
			out, err := kubectl("-n", "helm-test", "get", "deploy", "hello-web", "-o", "jsonpath={.status.readyReplicas} {.metadata.labels.message}")
			if err != nil || out != fmt.Sprintf("%d %s", replicas, message) {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	}
	apply("hello", chart("replicas: 1"))
	deployment("installed and Ready", 1, "one")
	apply("hello", chart("replicas: 2\nmessage: two"))
	deployment("upgraded to the new values", 2, "two")
	if out, _ := kubectl("-n", "helm-test", "get", "secrets", "-l", "owner=helm,name=hello", "-o", "name"); len(strings.Fields(out)) != 2 {
		t.Errorf("want two release revisions, got %q", out)
	}
	apply("broken", "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: broken, namespace: default}\nspec:\n  chartContent: bm90IGEgY2hhcnQ=\n")
	harness.Eventually(t, time.Minute, "broken chart reported", func() error {
		cond, _ := kubectl("get", "helmchart", "broken", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].status} {.status.conditions[?(@.type=="Failed")].message}`)
		ev, _ := kubectl("get", "events", "--field-selector", "involvedObject.name=broken,reason=ChartFailed", "-o", "name")
		if !strings.HasPrefix(cond, "True ") || !strings.Contains(cond, "chartContent") || ev == "" {
			return fmt.Errorf("condition %q, events %q", cond, ev)
		}
		return nil
	})
	t.Run("StaticChart", func(t *testing.T) {
		const file = "outpost-test-0.1.0.tgz"
		if err := os.WriteFile(filepath.Join(dataDir, "server", "static", "charts", file), tgz, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := kubectl("get", "--raw", "/static/charts/"+file); err != nil || out != string(tgz) {
			t.Errorf("admin cannot read the served chart: %v (%d bytes)", err, len(out))
		}
		for _, who := range []string{"system:anonymous", "someone"} {
			if out, err := kubectl("get", "--raw", "/static/charts/"+file, "--as", who); err == nil || !strings.Contains(out, "forbidden") {
				t.Errorf("%s read /static/: %v %.80q", who, err, out)
			}
		}
		// Its values come from a Secret (spec.valuesSecrets).
		apply("static", "apiVersion: v1\nkind: Secret\nmetadata: {name: static-values, namespace: default}\nstringData:\n  values.yaml: 'message: from-secret'\n"+
			"---\napiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: static, namespace: default}\nspec:\n"+
			"  chart: https://%{KUBERNETES_API}%/static/charts/"+file+"\n  targetNamespace: helm-test\n"+
			"  valuesSecrets: [{name: static-values, keys: [values.yaml]}]\n")
		harness.Eventually(t, 2*time.Minute, "chart from /static/ installed", func() error {
			out, err := kubectl("-n", "helm-test", "get", "deploy", "static-web", "-o", "jsonpath={.status.readyReplicas} {.metadata.labels.message}")
			if err != nil || out != "1 from-secret" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	})
	// An install the apiserver refuses (replicas -1) with failurePolicy abort: held, reported,
	// not retried.
	held := strings.Replace(chart("replicas: -1"), "name: hello", "name: held", 1)
	apply("held", strings.Replace(held, "  targetNamespace: helm-test\n", "  targetNamespace: helm-test\n  failurePolicy: abort\n", 1))
	harness.Eventually(t, time.Minute, "failed release held by failurePolicy abort", func() error {
		cond, _ := kubectl("get", "helmchart", "held", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason} {.status.conditions[?(@.type=="Failed")].message}`)
		ev, _ := kubectl("get", "events", "--field-selector", "involvedObject.name=held,reason=ChartHeld", "-o", "name")
		if !strings.HasPrefix(cond, "Held ") || !strings.Contains(cond, "abort") || ev == "" {
			return fmt.Errorf("condition %q, events %q", cond, ev)
		}
		return nil
	})
	if helmBin := os.Getenv("OUTPOST_HELM"); helmBin != "" {
		t.Run("HelmCLI", func(t *testing.T) {
			helm := func(args ...string) (string, error) {
				out, err := exec.Command(helmBin, append(args, "--kubeconfig", kubeconfig)...).CombinedOutput()
				return string(out), err
			}
			if out, err := helm("ls", "-n", "helm-test", "-q"); err != nil || !slices.Contains(strings.Fields(out), "hello") {
				t.Errorf("helm ls does not see the controller's release: %v %s", err, out)
			}
			f := filepath.Join(dir, "chart.tgz")
			os.WriteFile(f, tgz, 0o600)
			if out, err := helm("install", "cli", f, "-n", "helm-cli", "--create-namespace", "--set", "message=cli", "--wait", "--timeout", "2m"); err != nil {
				t.Fatalf("helm install: %v %s", err, out)
			}
			if out, err := kubectl("-n", "helm-cli", "get", "deploy", "cli-web", "-o", "jsonpath={.status.readyReplicas} {.metadata.labels.message}"); err != nil || out != "1 cli" {
				t.Errorf("helm install made %q %v", out, err)
			}
			if out, err := helm("uninstall", "cli", "-n", "helm-cli", "--wait"); err != nil {
				t.Fatalf("helm uninstall: %v %s", err, out)
			}
			if out, _ := kubectl("-n", "helm-cli", "get", "deploy", "-o", "name"); strings.TrimSpace(out) != "" {
				t.Errorf("left after helm uninstall: %s", out)
			}
			_, _ = kubectl("delete", "namespace", "helm-cli", "--wait=false")
		})
	}
	if out, err := kubectl("delete", "helmchart", "hello", "broken", "static", "held", "--ignore-not-found", "--timeout=2m"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	harness.Eventually(t, time.Minute, "release uninstalled", func() error {
		out, _ := kubectl("-n", "helm-test", "get", "deploy,secrets", "-l", "owner=helm", "-o", "name")
		dep, _ := kubectl("-n", "helm-test", "get", "deploy", "-o", "name")
		if strings.TrimSpace(out+dep) != "" {
			return fmt.Errorf("still there: %s %s", out, dep)
		}
		return nil
	})
	_, _ = kubectl("delete", "namespace", "helm-test", "--wait=false")
	_, _ = kubectl("delete", "secret", "static-values", "--ignore-not-found")
}
