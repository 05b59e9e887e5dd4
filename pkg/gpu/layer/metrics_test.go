package layer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/outpostk8s/outpost/pkg/gpu/health"
	"github.com/outpostk8s/outpost/pkg/gpu/metrics"
	"github.com/outpostk8s/outpost/pkg/gpu/mockgpu"
	"github.com/outpostk8s/outpost/pkg/pki"
)

const promSA = "system:serviceaccount:monitoring:prometheus"

// fakeAPIServer answers TokenReviews (prom-token is Prometheus's ServiceAccount, other-token
// another one) and SubjectAccessReviews (Prometheus and the scraper certificate's user may get
// /metrics) over HTTP, as the apiserver does, recording what it was asked.
type fakeAPIServer struct {
	mu    sync.Mutex
	asked []authorizationv1.SubjectAccessReviewSpec
}

func (f *fakeAPIServer) client(t *testing.T) kubernetes.Interface {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		users := map[string]string{"prom-token": promSA, "other-token": "system:serviceaccount:default:default"}
		if u, ok := users[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: u}}
		}
		tr.APIVersion, tr.Kind = "authentication.k8s.io/v1", "TokenReview"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tr)
	})
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", func(w http.ResponseWriter, r *http.Request) {
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.asked = append(f.asked, sar.Spec)
		f.mu.Unlock()
		sar.Status.Allowed = sar.Spec.User == promSA || sar.Spec.User == "scraper"
		sar.APIVersion, sar.Kind = "authorization.k8s.io/v1", "SubjectAccessReview"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sar)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tlsFiles are a node's certificates as pkg/pki writes them, and a client certificate of the
// cluster's client CA and of another CA.
func tlsFiles(t *testing.T) (files metrics.TLSFiles, dir string) {
	t.Helper()
	dir = t.TempDir()
	ca := func(name string) *pki.CA {
		c, err := pki.LoadOrCreateCA(dir, name, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clientCA, servingCA, otherCA := ca(pki.ClientCA), ca(pki.KubeletServingCA), ca("other-ca")
	for _, c := range []struct {
		ca   *pki.CA
		name string
		spec pki.Spec
	}{
		{servingCA, pki.KubeletServing, pki.Spec{CommonName: "n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}},
		{clientCA, "client-scraper", pki.Spec{CommonName: "scraper", Client: true}},
		{otherCA, "other-scraper", pki.Spec{CommonName: "scraper", Client: true}},
	} {
		if _, err := c.ca.Issue(dir, c.name, c.spec); err != nil {
			t.Fatal(err)
		}
	}
	return metrics.TLSFiles{CertFile: filepath.Join(dir, pki.KubeletServing+".crt"), KeyFile: filepath.Join(dir, pki.KubeletServing+".key"),
		ClientCAFile: filepath.Join(dir, pki.ClientCA+".crt")}, dir
}

// metricsAgent serves the mock DGX's metrics on a free loopback port until the test ends.
func metricsAgent(t *testing.T, cfg Config, api *fakeAPIServer) string {
	t.Helper()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsPort = free.Addr().(*net.TCPAddr).Port
	free.Close()
	m := mockgpu.DGXA100()
	m.Open()
	a := &Layer{cfg: cfg, lib: m, log: slog.New(slog.DiscardHandler), client: api.client(t),
		monitor: health.NewMonitor(func(string) bool { return true }, time.Minute, func(health.Change) {})}
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.serveMetrics(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.srv.Close()
		m.Close()
	})
	return fmt.Sprintf("127.0.0.1:%d", cfg.MetricsPort)
}

func scrape(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Without --gpu-metrics-anonymous the metrics are HTTPS, with the kubelet's certificate, for
// callers the apiserver names (TokenReview, or the cluster's client CA) and lets get /metrics
// (SubjectAccessReview): the upstream delegating authenticator and authorizer, as the node.
func TestMetricsDelegatedAuth(t *testing.T) {
	files, dir := tlsFiles(t)
	api := &fakeAPIServer{}
	addr := metricsAgent(t, Config{Hostname: "dgx", MetricsTLS: files}, api)
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.KubeletServingCA+".crt"))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("serving CA: %v", err)
	}
	client := func(cert string) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if cert != "" {
			kp, err := tls.LoadX509KeyPair(filepath.Join(dir, cert+".crt"), filepath.Join(dir, cert+".key"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	url := "https://" + addr + "/metrics"
	for _, tc := range []struct {
		name, cert, token string
		code              int
	}{
		{"anonymous", "", "", http.StatusUnauthorized},
		{"unknown token", "", "stolen", http.StatusUnauthorized},
		{"ServiceAccount not allowed", "", "other-token", http.StatusForbidden},
		{"Prometheus's ServiceAccount", "", "prom-token", http.StatusOK},
		{"client certificate of the cluster", "client-scraper", "", http.StatusOK},
		{"client certificate of another CA", "other-scraper", "", http.StatusUnauthorized},
	} {
		code, body := scrape(t, client(tc.cert), url, tc.token)
		if code != tc.code {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.code, body)
		}
		if served := strings.Contains(body, "DCGM_FI_DEV_GPU_UTIL{"); served != (tc.code == http.StatusOK) {
			t.Errorf("%s: metrics served %v with %d", tc.name, served, code)
		}
	}
	// Plain HTTP is not served: a token would cross the pod network in the clear.
	if code, body := scrape(t, http.DefaultClient, "http://"+addr+"/metrics", "prom-token"); code == http.StatusOK || strings.Contains(body, "DCGM_") {
		t.Errorf("plain HTTP: %d %q", code, body)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.asked) == 0 {
		t.Fatal("no SubjectAccessReview")
	}
	for _, s := range api.asked {
		if n := s.NonResourceAttributes; s.ResourceAttributes != nil || n == nil || n.Verb != "get" || n.Path != "/metrics" {
			t.Errorf("SubjectAccessReview %+v, want get on non-resource /metrics", s)
		}
	}
}

// --gpu-metrics-anonymous: plain HTTP to anyone, as dcgm-exporter serves; the apiserver is
// never asked.
func TestMetricsAnonymous(t *testing.T) {
	api := &fakeAPIServer{}
	addr := metricsAgent(t, Config{Hostname: "dgx", MetricsAnonymous: true}, api)
	code, body := scrape(t, http.DefaultClient, "http://"+addr+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, "DCGM_FI_DEV_GPU_UTIL{") {
		t.Errorf("%d:\n%s", code, body)
	}
	if len(api.asked) != 0 {
		t.Errorf("anonymous metrics asked the apiserver: %+v", api.asked)
	}
}
