package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWriterWaitsForPodCIDR(t *testing.T) {
	dir := t.TempDir()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	client := fake.NewClientset(node)
	w := New(Config{ConfDir: dir, IPAMDir: filepath.Join(dir, "ipam"), NodeName: "n1"}, client)
	ctx := context.Background()
	if err := w.Init(ctx); err != nil {
		t.Fatal(err)
	}
	w.Start(ctx)
	time.Sleep(100 * time.Millisecond)
	if w.Ready(ctx) == nil {
		t.Fatal("ready before the node had a PodCIDR")
	}
	node.Spec.PodCIDR, node.Spec.PodCIDRs = "10.42.3.0/24", []string{"10.42.3.0/24"}
	client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for w.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(dir, ConfFile))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type string
			IPAM struct {
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Plugins[0].Type != "bridge" || conf.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.42.3.0/24" || conf.Plugins[1].Type != "portmap" {
		t.Errorf("conflist: %s", b)
	}
}

func TestRenderRejectsNoCIDR(t *testing.T) {
	if _, err := Render(Config{}, nil); err == nil {
		t.Error("no error for a node without PodCIDR")
	}
	if _, err := Render(Config{}, []string{"bogus"}); err == nil {
		t.Error("no error for a bad PodCIDR")
	}
}
