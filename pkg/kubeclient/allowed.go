package kubeclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// List is the permission to list and watch resource (group "" is core) cluster-wide.
func List(group, resource string) []authorizationv1.ResourceAttributes {
	return []authorizationv1.ResourceAttributes{{Verb: "list", Group: group, Resource: resource}, {Verb: "watch", Group: group, Resource: resource}}
}

// WaitAllowed waits until the client's identity may do each of attrs. A controller's role
// comes with the deploy manifests, applied moments after the controllers start on a new
// cluster: informers started before would log an ERROR per forbidden list until then.
// It asks every interval, says so on log once after 30 s (the role may be missing for good),
// and returns ctx's error when ctx ends first.
func WaitAllowed(ctx context.Context, client kubernetes.Interface, log *slog.Logger, interval time.Duration, attrs ...authorizationv1.ResourceAttributes) error {
	warnAt := time.Now().Add(30 * time.Second)
	for {
		missing, err := notAllowed(ctx, client, attrs)
		if err == nil && missing == nil {
			return nil
		}
		if !warnAt.IsZero() && time.Now().After(warnAt) && log != nil {
			warnAt = time.Time{}
			log.Warn("still waiting for this component's permissions: is its role in the deploy manifests applied?", "verb", missing.Verb, "resource", missing.Resource, "err", err)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("not allowed to %s %s", missing.Verb, missing.Resource)
			}
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// notAllowed is the first of attrs the identity may not do.
func notAllowed(ctx context.Context, client kubernetes.Interface, attrs []authorizationv1.ResourceAttributes) (*authorizationv1.ResourceAttributes, error) {
	for i := range attrs {
		r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs[i]}}, metav1.CreateOptions{})
		if err != nil {
			return &attrs[i], err
		}
		if !r.Status.Allowed {
			return &attrs[i], nil
		}
	}
	return nil, nil
}
