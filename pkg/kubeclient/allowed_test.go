package kubeclient

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// WaitAllowed returns once the role arrives (the third review here), and not before.
func TestWaitAllowed(t *testing.T) {
	c := fake.NewClientset()
	reviews := 0
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		reviews++
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = reviews >= 3
		return true, r, nil
	})
	if err := WaitAllowed(context.Background(), c, nil, time.Millisecond, List("", "nodes")...); err != nil {
		t.Fatal(err)
	}
	if reviews != 4 { // two refused, then list and watch allowed
		t.Errorf("%d reviews", reviews)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	reviews = -100
	if err := WaitAllowed(ctx, c, nil, time.Millisecond, List("", "services")...); err == nil {
		t.Error("allowed while the role is missing")
	}
}
