package encryption

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ReEncrypt writes every Secret back unchanged. The apiserver skips a no-op write unless the
// stored value was read with a key other than its first, so each Secret ends up encrypted with
// the current key. It returns how many Secrets it wrote.
func ReEncrypt(ctx context.Context, client kubernetes.Interface) (int, error) {
	list, err := client.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list secrets: %w", err)
	}
	n := 0
	for _, s := range list.Items {
		for attempt := 0; ; attempt++ {
			_, err := client.CoreV1().Secrets(s.Namespace).Update(ctx, &s, metav1.UpdateOptions{})
			if err == nil {
				n++
				break
			}
			if apierrors.IsNotFound(err) {
				break // deleted meanwhile: nothing left to encrypt
			}
			if !apierrors.IsConflict(err) || attempt == 5 {
				return n, fmt.Errorf("re-encrypt secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			// Changed meanwhile: that write already used the current key, but write again
			// to be sure the newest version went through the current configuration.
			cur, err := client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			} else if err != nil {
				return n, fmt.Errorf("re-encrypt secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			s = *cur
		}
	}
	return n, nil
}

// WaitLoaded waits until the apiserver reports, in its metrics, that it loaded the
// configuration with this hash (it re-reads the file about once a minute).
func WaitLoaded(ctx context.Context, client kubernetes.Interface, hash string) error {
	want := `hash="` + hash + `"`
	for {
		raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err == nil {
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.HasPrefix(l, "apiserver_encryption_config_controller_last_config_info{") && strings.Contains(l, want) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the apiserver did not load the new encryption configuration (is the server running?): %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
