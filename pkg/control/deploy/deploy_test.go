package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/outpostk8s/outpost/manifests"
)

var cmGVK = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

func mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(cmGVK, meta.RESTScopeNamespace)
	return m
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]byte("kind: ConfigMap\nmetadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "apiVersion and kind") {
		t.Errorf("err = %v", err)
	}
	if _, err := Decode([]byte("apiVersion: v1\nkind: ConfigMap\n")); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("err = %v", err)
	}
	if _, err := Decode([]byte("a: [")); err == nil {
		t.Error("no error for bad YAML")
	}
	objs, err := Decode([]byte("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"))
	if err != nil || len(objs) != 2 {
		t.Errorf("objs=%d err=%v", len(objs), err)
	}
}

func TestControllerAppliesNewAndChangedFiles(t *testing.T) {
	dir := t.TempDir()
	client := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
	var patches []string
	client.PrependReactor("patch", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		patches = append(patches, p.GetNamespace()+"/"+p.GetName())
		return true, nil, nil
	})
	c := &Deploy{Dir: dir, Applier: Applier{Client: client, Mapper: mapper()}}
	ctx := context.Background()
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "a.yaml")
	os.WriteFile(f, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v1}\n"), 0o600)
	c.Sync(ctx)
	c.Sync(ctx) // unchanged: not applied again
	if len(patches) != 1 || patches[0] != "default/a" {
		t.Fatalf("patches = %v", patches)
	}
	os.WriteFile(f, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\ndata: {k: v2}\n"), 0o600)
	c.Sync(ctx)
	if len(patches) != 2 || patches[1] != "x/a" {
		t.Fatalf("changed file not re-applied: %v", patches)
	}
	// A file of an unknown kind fails and is retried on every pass.
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("apiVersion: x/v1\nkind: Nope\nmetadata: {name: b}\n"), 0o600)
	close(c.first)
	c.Sync(ctx)
	if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "b.yaml") {
		t.Errorf("Ready = %v, want the failed file named", err)
	}
}

// The files First names are applied ahead of the others, in First's order.
func TestControllerAppliesFirstFilesFirst(t *testing.T) {
	dir := t.TempDir()
	client := dynfake.NewSimpleDynamicClient(runtime.NewScheme())
	var order []string
	client.PrependReactor("patch", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		order = append(order, a.(k8stesting.PatchAction).GetName())
		return true, nil, nil
	})
	c := &Deploy{Dir: dir, Applier: Applier{Client: client, Mapper: mapper()}, First: []string{"rbac.yaml", "join.yaml"}}
	if err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "join", "rbac", "z"} {
		os.WriteFile(filepath.Join(dir, n+".yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+n+"}\n"), 0o600)
	}
	c.Sync(context.Background())
	if want := []string{"rbac", "join", "a", "z"}; !slices.Equal(order, want) {
		t.Fatalf("applied %v, want %v", order, want)
	}
}

func TestEmbeddedCoreDNSRendersAndDisables(t *testing.T) {
	dir := t.TempDir()
	v := Values{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", CoreDNSImage: "docker.io/outpostk8s/coredns:v1",
		MetricsAddress: "192.0.2.1", MetricsAddressType: "IPv4", MetricsPort: 10258, ServerCABase64: "Y2E=", LocalPathImage: "docker.io/outpostk8s/local-path-provisioner:v1", StoragePath: "/var/lib/outpost/storage"}
	if _, err := WriteDefaults(manifests.FS, dir, v, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "coredns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var svcIP, image string
	for _, o := range objs {
		switch o.GetKind() {
		case "Service":
			svcIP, _, _ = unstructuredString(o.Object, "spec", "clusterIP")
		case "Deployment":
			cs, _, _ := unstructuredSlice(o.Object, "spec", "template", "spec", "containers")
			image = cs[0].(map[string]any)["image"].(string)
		}
	}
	if svcIP != "10.43.0.10" || image != v.CoreDNSImage {
		t.Errorf("svc %q image %q", svcIP, image)
	}
	if _, err := WriteDefaults(manifests.FS, dir, v, map[string]bool{"coredns": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "coredns.yaml")); !os.IsNotExist(err) {
		t.Error("disabled coredns.yaml still present")
	}
	if _, err := Render(fstest.MapFS{"x.yaml": {Data: []byte("{{ .Nope }}")}}, "x.yaml", v); err == nil {
		t.Error("missing template key not reported")
	}
}

var _ = metav1.NamespaceDefault

func unstructuredString(m map[string]any, path ...string) (string, bool, error) {
	v, ok := walk(m, path)
	s, _ := v.(string)
	return s, ok, nil
}

func unstructuredSlice(m map[string]any, path ...string) ([]any, bool, error) {
	v, ok := walk(m, path)
	s, _ := v.([]any)
	return s, ok, nil
}

func walk(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = mm[p]
	}
	return cur, true
}
