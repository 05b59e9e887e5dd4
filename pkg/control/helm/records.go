package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Release records (Helm's sh.helm.release.v1.NAME.vN) drive what the controller does as
// cluster admin: an upgrade or uninstall deletes what the last record's manifest names, and a
// reinstall runs its hooks. So they live where the HelmChart lives, not in the target namespace
// whose users may write Secrets, and Helm reads only records whose content the controller
// wrote: a ledger in kube-system keeps the digest of each.

const (
	// LedgerNamespace holds the ledgers: whoever writes Secrets there is cluster admin already.
	LedgerNamespace = metav1.NamespaceSystem
	ledgerType      = corev1.SecretType("outpost.io/helm-ledger")
	ledgerKey       = "digests"
	// chartAnnotation on a ledger names its HelmChart (the Secret's name is a hash).
	chartAnnotation = "outpost.io/helmchart"
)

// StorageNamespace is where a HelmChart's release records go: its own namespace.
func StorageNamespace(hc *helmv1.HelmChart) string { return hc.Namespace }

// LedgerName is the kube-system Secret with the digests of a HelmChart's release records.
func LedgerName(hc *helmv1.HelmChart) string {
	sum := sha256.Sum256([]byte(hc.Namespace + "/" + hc.Name))
	return "helm-ledger-" + hex.EncodeToString(sum[:10])
}

// digest of a release as Helm stores it: its JSON, and its own labels (kept as the Secret's
// labels, outside the JSON: the config hash among them decides whether a chart changed). The
// round trip makes the digest of what is written equal that of what is read back (numbers
// come back as float64).
func digest(rls *release.Release) (string, error) {
	b, err := json.Marshal(rls)
	if err != nil {
		return "", fmt.Errorf("release digest: %w", err)
	}
	var back release.Release
	if err := json.Unmarshal(b, &back); err != nil {
		return "", fmt.Errorf("release digest: %w", err)
	}
	if b, err = json.Marshal(&back); err != nil {
		return "", fmt.Errorf("release digest: %w", err)
	}
	own := maps.Clone(rls.Labels)
	for _, l := range driver.GetSystemLabels() { // set by the driver, and checked on their own
		delete(own, l)
	}
	lb, err := json.Marshal(own) // map keys marshal sorted
	if err != nil {
		return "", fmt.Errorf("release digest: %w", err)
	}
	sum := sha256.Sum256(append(append(b, 0), lb...))
	return hex.EncodeToString(sum[:]), nil
}

// ledger is the digest of every record the controller wrote for one release, by revision.
// A digest is saved before its record is written, so a server stopped mid-operation still
// knows the record it left.
type ledger struct {
	ctx     context.Context
	secrets typedcorev1.SecretInterface // in LedgerNamespace
	name    string
	chart   string // namespace/name of the HelmChart
	obj     *corev1.Secret
	digests map[int]string
}

func loadLedger(ctx context.Context, secrets typedcorev1.SecretInterface, hc *helmv1.HelmChart) (*ledger, error) {
	l := &ledger{ctx: ctx, secrets: secrets, name: LedgerName(hc), chart: hc.Namespace + "/" + hc.Name, digests: map[int]string{}}
	s, err := secrets.Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release ledger %s: %w", l.name, err)
	}
	if err := json.Unmarshal(s.Data[ledgerKey], &l.digests); err != nil {
		return nil, fmt.Errorf("release ledger %s: %w", l.name, err)
	}
	l.obj = s
	return l, nil
}

// save writes digests as the ledger; the ledger keeps them only once they are stored.
func (l *ledger) save(digests map[int]string) error {
	b, err := json.Marshal(digests)
	if err != nil {
		return fmt.Errorf("release ledger: %w", err)
	}
	var s *corev1.Secret
	if l.obj == nil {
		s, err = l.secrets.Create(l.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: LedgerNamespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost"}, Annotations: map[string]string{chartAnnotation: l.chart}},
			Type: ledgerType, Data: map[string][]byte{ledgerKey: b}}, metav1.CreateOptions{})
	} else {
		s = l.obj.DeepCopy()
		s.Data = map[string][]byte{ledgerKey: b}
		s, err = l.secrets.Update(l.ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("release ledger %s: %w", l.name, err)
	}
	l.obj, l.digests = s, digests
	return nil
}

// with is the digests with version's set to d, or dropped for "".
func (l *ledger) with(version int, d string) map[int]string {
	next := map[int]string{}
	maps.Copy(next, l.digests)
	next[version] = d
	if d == "" {
		delete(next, version)
	}
	return next
}

// reset forgets every digest: no record is there, and none of the old ones may come back.
func (l *ledger) reset() error {
	if len(l.digests) == 0 {
		return nil
	}
	return l.save(map[int]string{})
}

func (l *ledger) remove() error {
	err := l.secrets.Delete(l.ctx, l.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release ledger %s: %w", l.name, err)
	}
	l.obj, l.digests = nil, map[int]string{}
	return nil
}

// adopt vouches for the records there are now: for records the controller may trust without
// having written them (an older Outpost's, in kube-system).
func (l *ledger) adopt(d driver.Driver, name string) error {
	rs, err := d.Query(map[string]string{"name": name, "owner": "helm"})
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release records: %w", err)
	}
	next := map[int]string{}
	for _, r := range rs {
		if next[r.Version], err = digest(r); err != nil {
			return err
		}
	}
	return l.save(next)
}

// newGuard holds d, the storage of hc's release records, to hc's ledger.
func newGuard(ctx context.Context, cs kubernetes.Interface, d driver.Driver, hc *helmv1.HelmChart) (*guard, error) {
	l, err := loadLedger(ctx, cs.CoreV1().Secrets(LedgerNamespace), hc)
	if err != nil {
		return nil, err
	}
	ns := StorageNamespace(hc)
	if l.obj == nil && ns == LedgerNamespace {
		// Outpost before the ledger wrote records here; only cluster admins could change them.
		if err := l.adopt(d, hc.Name); err != nil {
			return nil, err
		}
	}
	return &guard{Driver: d, ledger: l, namespace: ns, release: hc.Name}, nil
}

// guard is Helm's storage driver for one release, held to its ledger: a record's digest is
// saved before the record is written, and a record read that the ledger does not vouch for
// fails the operation before Helm acts on it.
type guard struct {
	driver.Driver
	ledger             *ledger
	namespace, release string // of the records
}

func (g *guard) Create(key string, rls *release.Release) error {
	return g.write(rls, func() error { return g.Driver.Create(key, rls) })
}

func (g *guard) Update(key string, rls *release.Release) error {
	return g.write(rls, func() error { return g.Driver.Update(key, rls) })
}

// write vouches for rls, then stores it; when the store fails, the record kept its content,
// which the digests before vouch for (best effort: failing that, the release is held).
func (g *guard) write(rls *release.Release, store func() error) error {
	prev := g.ledger.digests
	d, err := digest(rls)
	if err != nil {
		return err
	}
	if err := g.ledger.save(g.ledger.with(rls.Version, d)); err != nil {
		return err
	}
	if err := store(); err != nil {
		_ = g.ledger.save(prev)
		return err
	}
	return nil
}

// Delete drops the record's digest too: a copy of the deleted record must not come back.
func (g *guard) Delete(key string) (*release.Release, error) {
	rls, err := g.Driver.Delete(key)
	if err != nil || rls == nil {
		return rls, err
	}
	return rls, g.ledger.save(g.ledger.with(rls.Version, ""))
}

func (g *guard) Get(key string) (*release.Release, error) {
	rls, err := g.Driver.Get(key)
	if err != nil {
		return nil, err
	}
	if err := g.check(rls); err != nil {
		return nil, err
	}
	return rls, nil
}

// List is every release in the namespace (helm ls): only this one's records are held to
// the ledger.
func (g *guard) List(filter func(*release.Release) bool) ([]*release.Release, error) {
	rs, err := g.Driver.List(filter)
	if err != nil {
		return nil, err
	}
	if err := g.check(slices.DeleteFunc(slices.Clone(rs), func(r *release.Release) bool { return r.Name != g.release })...); err != nil {
		return nil, err
	}
	return rs, nil
}

func (g *guard) Query(labels map[string]string) ([]*release.Release, error) {
	rs, err := g.Driver.Query(labels)
	if err != nil {
		return nil, err
	}
	if err := g.check(rs...); err != nil {
		return nil, err
	}
	return rs, nil
}

// check passes records the ledger vouches for, and whose status label (what Helm selects the
// deployed revision by) agrees with their content.
func (g *guard) check(rs ...*release.Release) error {
	for _, r := range rs {
		d, err := digest(r)
		if err != nil || r.Info == nil || g.ledger.digests[r.Version] != d ||
			(r.Labels["status"] != "" && r.Labels["status"] != r.Info.Status.String()) {
			return &UntrustedError{Namespace: g.namespace, Release: g.release, Version: r.Version}
		}
	}
	return nil
}

// UntrustedError is a release record the controller did not write, or that changed since:
// nothing is done with the release until an administrator looks.
type UntrustedError struct {
	Namespace, Release string
	Version            int
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("release record %s/sh.helm.release.v1.%s.v%d was not written by the helm controller (or was changed since): "+
		"the release is left as it is. If that is not an attack, delete its records (kubectl -n %s delete secret,configmap -l owner=helm,name=%s) "+
		"and the chart is installed afresh, adopting its objects",
		e.Namespace, e.Release, e.Version, e.Namespace, e.Release)
}
