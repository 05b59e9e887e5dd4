package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/gpu/podresources"
)

// tokens stands in for TokenReview: a bearer token names its user.
func tokens(users map[string]string) authenticator.Request {
	return authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tok == "broken" {
			return nil, false, errors.New("TokenReview: apiserver unreachable")
		}
		name, known := users[tok]
		if !ok || !known {
			return nil, false, nil
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
	})
}

// allowOnly stands in for SubjectAccessReview, recording what it was asked.
type allowOnly struct {
	user  string
	asked []authorizer.Attributes
}

func (a *allowOnly) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.asked = append(a.asked, attrs)
	if attrs.GetUser().GetName() == "broken-sar" {
		return authorizer.DecisionNoOpinion, "", errors.New("SubjectAccessReview: apiserver unreachable")
	}
	if attrs.GetUser().GetName() == a.user {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC policy matched", nil
}

func guardedServer(t *testing.T) (*httptest.Server, *allowOnly) {
	t.Helper()
	m := mockgpu.DGXA100()
	m.Open()
	t.Cleanup(func() { m.Close() })
	src := Source{Lib: m, Hostname: "dgx", Holders: func() (map[string][]podresources.Holder, error) {
		return map[string][]podresources.Holder{mockgpu.UUID(3): {{Pod: "train-0", Namespace: "ml", Container: "worker"}}}, nil
	}}
	authz := &allowOnly{user: "system:serviceaccount:monitoring:prometheus"}
	g := Guard{Authn: tokens(map[string]string{"prom": authz.user, "other": "system:serviceaccount:default:default", "sar": "broken-sar"}), Authz: authorizer.AuthorizerFunc(authz.Authorize)}
	srv := httptest.NewServer(g.Wrap(src.Handler()))
	t.Cleanup(srv.Close)
	return srv, authz
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The series name the pods holding each GPU: only a caller the apiserver names and allows to
// get /metrics reads them.
func TestGuard(t *testing.T) {
	srv, authz := guardedServer(t)
	for _, tc := range []struct {
		name, token string
		code        int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"unknown token", "stolen", http.StatusUnauthorized},
		{"TokenReview fails", "broken", http.StatusUnauthorized},
		{"not allowed", "other", http.StatusForbidden},
		{"SubjectAccessReview fails", "sar", http.StatusInternalServerError},
		{"allowed", "prom", http.StatusOK},
	} {
		code, body := get(t, srv.URL+"/metrics", tc.token)
		if code != tc.code {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.code, body)
		}
		held := strings.Contains(body, `pod="train-0"`)
		if held != (tc.code == http.StatusOK) {
			t.Errorf("%s: pod names served %v with %d", tc.name, held, code)
		}
		if tc.code == http.StatusOK && !strings.Contains(body, "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n") {
			t.Errorf("%s: no metrics:\n%s", tc.name, body)
		}
	}
	if code, body := get(t, srv.URL+"/metrics", "other"); !strings.Contains(body, `"system:serviceaccount:default:default"`) || code != http.StatusForbidden {
		t.Errorf("denial does not name the user: %d %q", code, body)
	}
	// What RBAC grants: get on the non-resource URL /metrics.
	if len(authz.asked) == 0 {
		t.Fatal("the authorizer was never asked")
	}
	for _, a := range authz.asked {
		if a.GetVerb() != "get" || a.GetPath() != "/metrics" || a.IsResourceRequest() {
			t.Errorf("asked verb %q path %q resource %v, want get /metrics non-resource", a.GetVerb(), a.GetPath(), a.IsResourceRequest())
		}
	}
}
