package harness

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// WriteLoad writes ConfigMaps one after another, as a steady client does, and records each
// write the apiserver acknowledged: those must survive whatever happens to the server.
type WriteLoad struct {
	client kubernetes.Interface
	prefix string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	acked  []string
	failed int
}

// LoadLabel marks the load's ConfigMaps.
const LoadLabel = "outpost-test-load"

// StartWriteLoad writes through the apiserver at server (the kubeconfig's when "").
func StartWriteLoad(t testing.TB, kubeconfig, server, prefix string) *WriteLoad {
	t.Helper()
	c := Client(t, kubeconfig, server)
	ctx, cancel := context.WithCancel(context.Background())
	w := &WriteLoad{client: c, prefix: prefix, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// Client is a clientset for the kubeconfig, at server when given, with short timeouts.
func Client(t testing.TB, kubeconfig, server string) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags(server, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 5 * time.Second
	rc.QPS, rc.Burst = 1000, 1000 // client-go's default (5/s) would be the load's limit
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *WriteLoad) run(ctx context.Context) {
	defer close(w.done)
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("%s-%d", w.prefix, i)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LoadLabel: w.prefix}},
			Data: map[string]string{"i": fmt.Sprint(i)}}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.client.CoreV1().ConfigMaps("default").Create(wctx, cm, metav1.CreateOptions{})
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, name)
		} else {
			w.failed++
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(100 * time.Millisecond) // a server down: do not spin
		}
	}
}

// Stop ends the load and returns the names of the writes acknowledged, and how many failed.
func (w *WriteLoad) Stop() (acked []string, failed int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked, w.failed
}

// Missing is the acknowledged writes the apiserver at server (the kubeconfig's when "") does
// not hold.
func Missing(t testing.TB, kubeconfig, server, prefix string, acked []string) ([]string, error) {
	t.Helper()
	c := Client(t, kubeconfig, server)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: LoadLabel + "=" + prefix})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, cm := range l.Items {
		have[cm.Name] = true
	}
	var missing []string
	for _, n := range acked {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}
