package helm

import (
	"context"
	"errors"
	"fmt"
	"testing"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	helmtime "helm.sh/helm/v3/pkg/time"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

func testRelease(version int, status release.Status) *release.Release {
	return &release.Release{Name: "app", Namespace: "apps", Version: version,
		Info: &release.Info{Status: status, FirstDeployed: helmtime.Now(), LastDeployed: helmtime.Now(), Description: "Install complete"},
		Chart: &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "app", Version: "0.1.0"},
			// Not a float64: JSON brings it back rounded.
			Values: map[string]any{"replicas": 2, "big": int64(1)<<60 + 1}},
		Config:   map[string]any{"replicas": 2},
		Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		Labels:   map[string]string{HashLabel: "abc"}}
}

func key(version int) string { return fmt.Sprintf("sh.helm.release.v1.app.v%d", version) }

func chartIn(ns string) *helmv1.HelmChart {
	return &helmv1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: helmv1.HelmChartSpec{TargetNamespace: "apps"}}
}

// records is Helm's own Secrets driver on the chart's namespace: what a tenant could write too.
func records(cs kubernetes.Interface, ns string) driver.Driver {
	return driver.NewSecrets(cs.CoreV1().Secrets(ns))
}

func mustGuard(t *testing.T, cs kubernetes.Interface, hc *helmv1.HelmChart) *guard {
	t.Helper()
	g, err := newGuard(context.Background(), cs, records(cs, StorageNamespace(hc)), hc)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func untrusted(t *testing.T, err error, version int) {
	t.Helper()
	var u *UntrustedError
	if !errors.As(err, &u) || u.Version != version {
		t.Errorf("want the record of revision %d refused, got %v", version, err)
	}
}

func query(g *guard) error {
	_, err := g.Query(map[string]string{"name": "app", "owner": "helm"})
	return err
}

func TestDigestSurvivesStorage(t *testing.T) {
	d := records(fake.NewClientset(), "apps")
	r := testRelease(1, release.StatusDeployed)
	if err := d.Create(key(1), r); err != nil {
		t.Fatal(err)
	}
	back, err := d.Get(key(1))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := digest(r)
	if got, _ := digest(back); got != want {
		t.Error("a record read back has another digest than the one written")
	}
	back.Manifest += "---\nkind: ClusterRoleBinding\n"
	if got, _ := digest(back); got == want {
		t.Error("a changed manifest has the same digest")
	}
}

// The attack: a tenant who may write Secrets where the records are rewrites one (another
// status, hooks, manifest) or adds a later revision. Helm must never get either.
func TestGuardRefusesRecordsItDidNotWrite(t *testing.T) {
	cs := fake.NewClientset()
	hc := chartIn("team")
	g := mustGuard(t, cs, hc)
	own := testRelease(1, release.StatusDeployed)
	if err := g.Create(key(1), own); err != nil {
		t.Fatal(err)
	}
	if err := query(g); err != nil {
		t.Fatalf("the controller's own record: %v", err)
	}
	// The ledger is in kube-system, read again by the next sync.
	if _, err := cs.CoreV1().Secrets(LedgerNamespace).Get(context.Background(), LedgerName(hc), metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	g = mustGuard(t, cs, hc)
	if err := query(g); err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	tenant := records(cs, "team")
	evil := testRelease(1, release.StatusFailed)
	evil.Hooks = []*release.Hook{{Name: "pwn", Kind: "ClusterRoleBinding", Events: []release.HookEvent{release.HookPreDelete, release.HookPreInstall},
		Manifest: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\nroleRef: {kind: ClusterRole, name: cluster-admin}\n"}}
	if err := tenant.Update(key(1), evil); err != nil {
		t.Fatal(err)
	}
	untrusted(t, query(g), 1)
	_, err := g.Get(key(1))
	untrusted(t, err, 1)
	// The content counts, not who wrote it last: put back, the record is the controller's.
	if err := tenant.Update(key(1), own); err != nil {
		t.Fatal(err)
	}
	if err := query(g); err != nil {
		t.Errorf("the record put back: %v", err)
	}
	evil.Version, evil.Info.Status = 2, release.StatusPendingInstall
	if err := tenant.Create(key(2), evil); err != nil {
		t.Fatal(err)
	}
	untrusted(t, query(g), 2)
	if _, err := tenant.Delete(key(2)); err != nil {
		t.Fatal(err)
	}
	// The config hash is a label outside the record's JSON, and decides whether the chart
	// changed: a tenant setting it would hold the admin's changes back.
	patch := []byte(`{"metadata":{"labels":{"` + HashLabel + `":"forged"}}}`)
	if _, err := cs.CoreV1().Secrets("team").Patch(context.Background(), key(1), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	untrusted(t, query(g), 1)
	if err := tenant.Update(key(1), own); err != nil {
		t.Fatal(err)
	}
	// The status label is what Helm finds the deployed revision by: it must agree.
	patch = []byte(`{"metadata":{"labels":{"status":"superseded"}}}`)
	if _, err := cs.CoreV1().Secrets("team").Patch(context.Background(), key(1), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	untrusted(t, query(g), 1)
}

func TestGuardLedgerFollowsWrites(t *testing.T) {
	cs := fake.NewClientset()
	hc := chartIn("team")
	g := mustGuard(t, cs, hc)
	tenant := records(cs, "team")
	// A forged record under the next key: Helm's create fails, and the ledger must not
	// vouch for what the forgery holds.
	if err := tenant.Create(key(2), testRelease(2, release.StatusPendingInstall)); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(key(2), testRelease(2, release.StatusPendingInstall)); !errors.Is(err, driver.ErrReleaseExists) {
		t.Fatalf("create over a forged record: %v", err)
	}
	if _, ok := mustGuard(t, cs, hc).ledger.digests[2]; ok {
		t.Error("the ledger vouches for a record the controller failed to write")
	}
	if _, err := tenant.Delete(key(2)); err != nil {
		t.Fatal(err)
	}
	r := testRelease(1, release.StatusDeployed)
	if err := g.Create(key(1), r); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Delete(key(1)); err != nil {
		t.Fatal(err)
	}
	// A copy of a deleted record does not come back.
	if err := tenant.Create(key(1), r); err != nil {
		t.Fatal(err)
	}
	untrusted(t, query(mustGuard(t, cs, hc)), 1)
	if err := g.ledger.reset(); err != nil || len(mustGuard(t, cs, hc).ledger.digests) != 0 {
		t.Errorf("reset: %v", err)
	}
	if err := g.ledger.remove(); err != nil {
		t.Fatal(err)
	}
	if l := mustGuard(t, cs, hc).ledger; l.obj != nil {
		t.Error("ledger left after remove")
	}
}

// Records an older Outpost wrote without a ledger are trusted in kube-system only, where
// writing them takes a cluster admin.
func TestGuardAdoptsOnlyKubeSystemRecords(t *testing.T) {
	for _, ns := range []string{LedgerNamespace, "team"} {
		cs := fake.NewClientset()
		if err := records(cs, ns).Create(key(1), testRelease(1, release.StatusDeployed)); err != nil {
			t.Fatal(err)
		}
		err := query(mustGuard(t, cs, chartIn(ns)))
		if ns == LedgerNamespace && err != nil {
			t.Errorf("kube-system records not adopted: %v", err)
		}
		if ns != LedgerNamespace {
			untrusted(t, err, 1)
		}
	}
	// No records, no ledger: nothing is written until the first install.
	cs := fake.NewClientset()
	if g := mustGuard(t, cs, chartIn(LedgerNamespace)); g.ledger.obj != nil || !errors.Is(query(g), driver.ErrReleaseNotFound) {
		t.Error("an empty ledger was written")
	}
}
