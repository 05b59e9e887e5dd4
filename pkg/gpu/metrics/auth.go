package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
)

// Guard lets a request through to the metrics only when the apiserver names its caller and
// allows it to get the path: the series name the pods holding each GPU, which the pod network
// at large should not read.
type Guard struct {
	Authn authenticator.Request
	Authz authorizer.Authorizer
	Log   *slog.Logger // nil: errors are only answered
}

// Wrap answers 401 to a caller it cannot name, 403 to one not allowed, as the kubelet does.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok, err := g.Authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				g.logf("GPU metrics: authentication failed", "err", err)
			}
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		// Serving the metrics only reads, whatever the method: a non-resource get, as an RBAC
		// rule on nonResourceURLs ["/metrics"] grants it.
		attrs := authorizer.AttributesRecord{User: res.User, Verb: "get", Path: r.URL.Path}
		decision, reason, err := g.Authz.Authorize(r.Context(), attrs)
		if err != nil {
			g.logf("GPU metrics: authorization failed", "user", res.User.GetName(), "err", err)
			http.Error(w, "Authorization error", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			msg := fmt.Sprintf("Forbidden: user %q may not get %s", res.User.GetName(), r.URL.Path)
			if reason != "" {
				msg += ": " + reason
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g Guard) logf(msg string, args ...any) {
	if g.Log != nil {
		g.Log.Warn(msg, args...)
	}
}

// The kubelet's webhook defaults: answers are cached, a denial briefly.
const (
	tokenCacheTTL = 2 * time.Minute
	allowCacheTTL = 5 * time.Minute
	denyCacheTTL  = 30 * time.Second
	reviewTimeout = 10 * time.Second
)

// Delegated is a Guard asking the apiserver: a bearer token by TokenReview, a client
// certificate by clientCA (nil: none accepted), the access by SubjectAccessReview. client's
// identity must be allowed to create both reviews (system:node is, for the kubelet's webhook).
func Delegated(client kubernetes.Interface, clientCA dynamiccertificates.CAContentProvider, log *slog.Logger) (Guard, error) {
	if client == nil {
		return Guard{}, errors.New("GPU metrics: no apiserver client to authenticate callers with")
	}
	backoff := options.DefaultAuthWebhookRetryBackoff()
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            client.AuthenticationV1(),
		TokenAccessReviewTimeout:           reviewTimeout,
		WebhookRetryBackoff:                backoff,
		CacheTTL:                           tokenCacheTTL,
		ClientCertificateCAContentProvider: clientCA,
	}.New()
	if err != nil {
		return Guard{}, fmt.Errorf("GPU metrics authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return Guard{}, fmt.Errorf("GPU metrics authorization: %w", err)
	}
	return Guard{Authn: authn, Authz: authz, Log: log}, nil
}

// TLSFiles are the node's certificates the endpoint serves with: the kubelet's serving pair,
// and the cluster's client CA, whose certificates name their holder.
type TLSFiles struct{ CertFile, KeyFile, ClientCAFile string }

// Secure loads the files, and reloads them as they are renewed until ctx ends. It returns the
// TLS config to serve with (client certificates asked for, checked by the Guard) and the
// Guard.
func Secure(ctx context.Context, f TLSFiles, client kubernetes.Interface, log *slog.Logger) (*tls.Config, Guard, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("gpu-metrics-client-ca", f.ClientCAFile)
	if err != nil {
		return nil, Guard{}, fmt.Errorf("GPU metrics client CA: %w", err)
	}
	serving, err := dynamiccertificates.NewDynamicServingContentFromFiles("gpu-metrics-serving", f.CertFile, f.KeyFile)
	if err != nil {
		return nil, Guard{}, fmt.Errorf("GPU metrics serving certificate: %w", err)
	}
	g, err := Delegated(client, ca, log)
	if err != nil {
		return nil, Guard{}, err
	}
	// The chain is checked by the Guard's x509 authenticator, as the apiserver does: a client
	// without a certificate may still bring a token.
	base := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	ctrl := dynamiccertificates.NewDynamicServingCertificateController(base, ca, serving, nil, nil)
	ca.AddListener(ctrl)
	serving.AddListener(ctrl)
	if err := ctrl.RunOnce(); err != nil {
		return nil, Guard{}, fmt.Errorf("GPU metrics TLS: %w", err)
	}
	go ca.Run(ctx, 1)
	go serving.Run(ctx, 1)
	go ctrl.Run(1, ctx.Done())
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: ctrl.GetConfigForClient}, g, nil
}
