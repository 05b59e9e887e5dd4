package tests

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpostk8s/outpost/tests/harness"
)

// apiWrites creates ConfigMaps at rate per second for d, each in its own goroutine so that a
// slow write does not hold back the schedule, and returns the create latencies' p50 and p99
// in milliseconds.
func apiWrites(t *testing.T, s *harness.Server, rate int, d time.Duration) (p50, p99 float64) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = float32(rate*4), rate*4
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := fmt.Sprintf("bench-writes-%d", time.Now().Unix())
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	var mu sync.Mutex
	var lat []float64
	var failed int
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i)}, Data: map[string]string{"k": "v"}}
			start := time.Now()
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			ms := float64(time.Since(start).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			lat = append(lat, ms)
		}(i)
	}
	wg.Wait()
	if failed > 0 || len(lat) == 0 {
		t.Fatalf("%d of %d writes failed", failed, failed+len(lat))
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// snapshotTime is how long `outpost etcd-snapshot save` takes on the running server.
func snapshotTime(t *testing.T, s *harness.Server) float64 {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, s.Bin, "etcd-snapshot", "save", "--name", "bench", "--data-dir", s.DataDir(), "--runtime-dir", s.RunDir()).CombinedOutput(); err != nil {
		t.Fatalf("snapshot: %v %s", err, out)
	}
	return time.Since(start).Seconds()
}
