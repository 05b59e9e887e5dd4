// Package kubeclienttest helps tests of components that use kubeclient.
package kubeclienttest

import (
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// AllowAll answers the fake clientset's access reviews (kubeclient.WaitAllowed) with yes: its
// default answer is no.
func AllowAll(c *fake.Clientset) *fake.Clientset {
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	return c
}
