package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
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
	return chartArchive(t, files)
}

// chartArchive is a chart's .tgz of files (path: content).
func chartArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := slices.Sorted(maps.Keys(files))
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, name := range names {
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
// uninstalls the same chart with the admin kubeconfig, and lists the controller's release
// (its records are in the HelmChart's namespace, not the target's).
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
	if out, _ := kubectl("-n", "default", "get", "secrets", "-l", "owner=helm,name=hello", "-o", "name"); len(strings.Fields(out)) != 2 {
		t.Errorf("want two release revisions, got %q", out)
	}
	if out, _ := kubectl("-n", "helm-test", "get", "secrets", "-l", "owner=helm", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("release records in the target namespace: %q", out)
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
			if out, err := helm("ls", "-n", "default", "-q"); err != nil || !slices.Contains(strings.Fields(out), "hello") {
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
		out, _ := kubectl("-n", "default", "get", "secrets", "-l", "owner=helm", "-o", "name")
		dep, _ := kubectl("-n", "helm-test", "get", "deploy", "-o", "name")
		if strings.TrimSpace(out+dep) != "" {
			return fmt.Errorf("still there: %s %s", out, dep)
		}
		return nil
	})
	_, _ = kubectl("delete", "namespace", "helm-test", "--wait=false")
	_, _ = kubectl("delete", "secret", "static-values", "--ignore-not-found")
}

// forgedRecord is a Helm release record as a tenant could write it (Helm's encoding: gzipped
// JSON, base64), as the API's base64 data: a hook that binds dev to cluster-admin on any
// install, upgrade or delete, and a manifest naming kube-system's canary ConfigMap (an upgrade
// or uninstall deletes what the last record names).
func forgedRecord(t *testing.T, name, ns string, version int, status, crb string) string {
	t.Helper()
	hook := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: " + crb + "}\n" +
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n" +
		"subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}]\n"
	when := "2024-01-01T00:00:00Z"
	rel := map[string]any{"name": name, "namespace": ns, "version": version,
		"info":     map[string]any{"status": status, "description": "forged", "first_deployed": when, "last_deployed": when},
		"chart":    map[string]any{"metadata": map[string]any{"apiVersion": "v2", "name": "forged", "version": "0.1.0"}},
		"config":   map[string]any{},
		"manifest": "---\n# Source: forged/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: canary\n  namespace: kube-system\n",
		"hooks": []any{map[string]any{"name": crb, "kind": "ClusterRoleBinding", "path": "forged/templates/pwn.yaml", "manifest": hook,
			"events": []string{"pre-install", "post-install", "pre-upgrade", "post-upgrade", "pre-delete", "post-delete", "pre-rollback", "post-rollback"}}}}
	js, err := json.Marshal(rel)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write(js)
	gz.Close()
	return base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(b.Bytes())))
}

// TestHelmTenantCannotDriveReleases: a user with `edit` in a chart's target namespace must not
// make the Helm controller (cluster admin) run a hook or delete objects of their choosing by
// writing release records. A HelmChart in kube-system keeps its records there, so a forged
// later revision in the target namespace is never read; a HelmChart in the tenant's own
// namespace keeps its records where the tenant can rewrite them, and the rewritten record is
// refused (reason Untrusted) rather than acted on. Resyncs every 15s: two or more pass.
func TestHelmTenantCannotDriveReleases(t *testing.T) {
	const resync = 15 * time.Second
	s := harness.NewServer(t, "--disable-agent", "--helm-resync", resync.String())
	t.Cleanup(func() {
		if left := harness.Leftovers(s.Root); len(left) > 0 {
			t.Errorf("left on the host after cleanup: %v", left)
		}
	})
	t.Cleanup(s.Cleanup)
	s.Start()
	if err := s.WaitLog("no node here (--disable-agent)", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	apply := func(as, name, y string) {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		os.WriteFile(f, []byte(y), 0o600)
		args := []string{"apply", "-f", f}
		if as != "" {
			args = append(args, "--as", as)
		}
		if out, err := s.Kubectl(args...); err != nil {
			t.Fatalf("apply %s: %v: %s", name, err, out)
		}
	}
	get := func(args ...string) string {
		out, _ := s.Kubectl(args...)
		return strings.TrimSpace(out)
	}
	// The controller's own identity, cluster admin by its manifest.
	for _, f := range []string{"server/cred/helm.kubeconfig", "server/tls/client-helm.crt"} {
		if _, err := os.Stat(filepath.Join(s.DataDir(), f)); err != nil {
			t.Error(err)
		}
	}
	harness.Eventually(t, time.Minute, "helm controller's ClusterRoleBinding", func() error {
		if out := get("get", "clusterrolebinding", "outpost:helm-controller", "-o", "jsonpath={.roleRef.name} {.subjects[0].name}"); out != "cluster-admin system:outpost-helm" {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	harness.Eventually(t, 2*time.Minute, "HelmChart CRD served", func() error {
		_, err := s.Kubectl("get", "helmcharts", "-A")
		return err
	})
	apply("", "tenant", "apiVersion: v1\nkind: Namespace\nmetadata: {name: tenant}\n---\n"+
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: dev-edit, namespace: tenant}\n"+
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n"+
		"subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}]\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: canary, namespace: kube-system}\ndata: {alive: \"yes\"}\n")
	if out := get("auth", "can-i", "update", "secrets", "-n", "tenant", "--as", "dev"); out != "yes" {
		t.Fatalf("dev cannot write Secrets in tenant: %q", out)
	}
	tgz := base64.StdEncoding.EncodeToString(chartArchive(t, map[string]string{
		"cm/Chart.yaml":        "apiVersion: v2\nname: cm\nversion: 0.1.0\n",
		"cm/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-cm}\ndata: {message: {{ .Values.message | quote }}}\n",
		"cm/values.yaml":       "message: admin\n",
	}))
	apply("", "charts", "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: victim, namespace: kube-system}\n"+
		"spec: {targetNamespace: tenant, chartContent: "+tgz+"}\n---\n"+
		"apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: local, namespace: tenant}\nspec: {chartContent: "+tgz+"}\n")
	record := func(ns, name string, v int, path string) string {
		return get("-n", ns, "get", "secret", fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, v), "-o", "jsonpath="+path)
	}
	status := func(ns, name string, v int) string { return record(ns, name, v, "{.metadata.labels.status}") }
	for _, c := range []struct{ ns, name string }{{"kube-system", "victim"}, {"tenant", "local"}} {
		harness.Eventually(t, 2*time.Minute, c.name+" installed", func() error {
			if out := get("-n", "tenant", "get", "configmap", c.name+"-cm", "-o", "jsonpath={.data.message}"); out != "admin" {
				return fmt.Errorf("configmap %q", out)
			}
			if st := status(c.ns, c.name, 1); st != "deployed" {
				return fmt.Errorf("record in %s: %q", c.ns, st)
			}
			return nil
		})
	}
	if out := get("-n", "tenant", "get", "secrets", "-l", "owner=helm,name=victim", "-o", "name"); out != "" {
		t.Errorf("victim's records are in the target namespace: %s", out)
	}
	victimRV := record("kube-system", "victim", 1, "{.metadata.resourceVersion}")

	// The tenant forges a later revision of victim where its records used to be, and rewrites
	// local's only record; neither may they write kube-system's.
	apply("dev", "forged", fmt.Sprintf("apiVersion: v1\nkind: Secret\ntype: helm.sh/release.v1\nmetadata:\n  name: sh.helm.release.v1.victim.v2\n  namespace: tenant\n"+
		"  labels: {owner: helm, name: victim, status: pending-install, version: \"2\"}\ndata: {release: %s}\n",
		forgedRecord(t, "victim", "tenant", 2, "pending-install", "pwn-victim")))
	patch := fmt.Sprintf(`{"metadata":{"labels":{"status":"failed"}},"data":{"release":%q}}`, forgedRecord(t, "local", "tenant", 1, "failed", "pwn-local"))
	if out, err := s.Kubectl("-n", "tenant", "patch", "secret", "sh.helm.release.v1.local.v1", "--type", "merge", "-p", patch, "--as", "dev"); err != nil {
		t.Fatalf("dev rewrites local's record: %v %s", err, out)
	}
	if out, err := s.Kubectl("-n", "kube-system", "patch", "secret", "sh.helm.release.v1.victim.v1", "--type", "merge", "-p", patch, "--as", "dev"); err == nil {
		t.Errorf("dev wrote a record in kube-system: %s", out)
	}
	harness.Eventually(t, 2*resync+30*time.Second, "rewritten record refused", func() error {
		cond := get("-n", "tenant", "get", "helmchart", "local", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason}`)
		ev := get("-n", "tenant", "get", "events", "--field-selector", "involvedObject.name=local,reason=UntrustedRelease", "-o", "name")
		if cond != "Untrusted" || ev == "" {
			return fmt.Errorf("condition %q, events %q", cond, ev)
		}
		return nil
	})
	time.Sleep(2*resync + 5*time.Second) // two more resyncs that must change nothing
	if out := get("get", "clusterrolebindings", "-o", "name"); strings.Contains(out, "pwn-") {
		t.Errorf("a forged hook ran: %s", out)
	}
	// The answer is the last line (kubectl may warn before it).
	if out := get("auth", "can-i", "create", "clusterrolebindings", "--as", "dev"); out[strings.LastIndex(out, "\n")+1:] != "no" {
		t.Errorf("dev may create ClusterRoleBindings: %q", out)
	}
	if out := get("-n", "kube-system", "get", "configmap", "canary", "-o", "jsonpath={.data.alive}"); out != "yes" {
		t.Errorf("the canary a forged manifest names is gone: %q", out)
	}
	for _, name := range []string{"victim", "local"} {
		if out := get("-n", "tenant", "get", "configmap", name+"-cm", "-o", "jsonpath={.data.message}"); out != "admin" {
			t.Errorf("%s's object changed: %q", name, out)
		}
	}
	if rv := record("kube-system", "victim", 1, "{.metadata.resourceVersion}"); rv != victimRV || status("kube-system", "victim", 1) != "deployed" {
		t.Errorf("victim's record changed: resourceVersion %s, was %s", rv, victimRV)
	}
	if out := get("-n", "kube-system", "get", "secrets", "-l", "owner=helm,name=victim", "-o", "name"); out != "secret/sh.helm.release.v1.victim.v1" {
		t.Errorf("victim's records: %q", out)
	}
	if out := get("-n", "tenant", "get", "secrets", "-l", "owner=helm,name=local", "-o", "name"); out != "secret/sh.helm.release.v1.local.v1" || status("tenant", "local", 1) != "failed" {
		t.Errorf("local's records were acted on: %q", out)
	}
	if out := get("get", "helmchart", "-n", "kube-system", "victim", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].status}`); out != "False" {
		t.Errorf("victim's Failed condition: %q", out)
	}

	// The way out the event names: the administrator deletes the records, and the chart is
	// installed afresh, adopting its ConfigMap.
	s.MustKubectl("-n", "tenant", "delete", "secret", "-l", "owner=helm,name=local")
	harness.Eventually(t, 2*resync+30*time.Second, "local installed afresh", func() error {
		cond := get("-n", "tenant", "get", "helmchart", "local", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].status} {.status.conditions[?(@.type=="Failed")].reason}`)
		if st := status("tenant", "local", 1); cond != "False Installed" || st != "deployed" {
			return fmt.Errorf("condition %q, record %q", cond, st)
		}
		return nil
	})
	s.MustKubectl("-n", "tenant", "delete", "secret", "sh.helm.release.v1.victim.v2")
	if out, err := s.Kubectl("delete", "helmchart", "-n", "kube-system", "victim", "--timeout=2m"); err != nil {
		t.Fatalf("delete victim: %v %s", err, out)
	}
	if out, err := s.Kubectl("delete", "helmchart", "-n", "tenant", "local", "--timeout=2m"); err != nil {
		t.Fatalf("delete local: %v %s", err, out)
	}
	harness.Eventually(t, time.Minute, "releases and ledgers removed", func() error {
		left := get("-n", "tenant", "get", "configmaps,secrets", "-l", "owner=helm", "-o", "name") + get("-n", "tenant", "get", "configmap", "-o", "name")
		left += get("-n", "kube-system", "get", "secrets", "-o", "name")
		for _, l := range strings.Fields(left) {
			if strings.Contains(l, "-cm") || strings.Contains(l, "helm-ledger-") || strings.Contains(l, "sh.helm.release") {
				return fmt.Errorf("still there: %s", l)
			}
		}
		return nil
	})
	if out := get("-n", "kube-system", "get", "configmap", "canary", "-o", "jsonpath={.data.alive}"); out != "yes" {
		t.Errorf("the canary is gone after the uninstalls: %q", out)
	}
}
