package join

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

// A server in the middle answers /cacerts with the real CA followed by its own, and presents
// a certificate from its own CA: the pin covers the first, so before the fix the agent trusted
// both and sent its token. It must refuse, send no token, and write nothing.
func TestPinBypassBundleRefused(t *testing.T) {
	real, err := pki.EnsureCluster(pki.ClusterSpec{Dir: t.TempDir(), NodeName: "s", NodeIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	evilDir := t.TempDir()
	evil, err := pki.EnsureCluster(pki.ClusterSpec{Dir: evilDir, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NodeName: "s", NodeIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	var tokens atomic.Int32
	mitm := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(TokenHeader) != "" {
			tokens.Add(1)
		}
		if r.URL.Path == CACertsPath {
			w.Write(append(append([]byte{}, real.ServerCA.CertPEM...), evil.ServerCA.CertPEM...))
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	cert, err := tls.LoadX509KeyPair(evil.Path(pki.APIServerServing, ".crt"), evil.Path(pki.APIServerServing, ".key"))
	if err != nil {
		t.Fatal(err)
	}
	mitm.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	mitm.StartTLS()
	defer mitm.Close()
	tok, _ := token.Generate(real.ServerCA.CertPEM)
	dir := filepath.Join(t.TempDir(), "tls")
	_, err = Client{Servers: []string{mitm.URL}, Token: tok, Timeout: 2 * time.Second}.Run(context.Background(), node("n1", pwA), dir)
	if !errors.Is(err, token.ErrPinMismatch) || !strings.Contains(err.Error(), mitm.URL) || !strings.Contains(err.Error(), "2 certificates") {
		t.Fatalf("err = %v", err)
	}
	if tokens.Load() != 0 {
		t.Errorf("token sent %d times", tokens.Load())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Error("credentials written")
	}
	// Only the pinned certificate, alone, passes.
	if _, err := PinnedCA(real.ServerCA.CertPEM, tok.CAHash); err != nil {
		t.Errorf("the real CA alone: %v", err)
	}
	for name, body := range map[string][]byte{
		"trailing junk": append(append([]byte{}, real.ServerCA.CertPEM...), "junk"...),
		"other CA":      evil.ServerCA.CertPEM,
		"empty":         nil,
	} {
		if _, err := PinnedCA(body, tok.CAHash); !errors.Is(err, token.ErrPinMismatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRenewWithoutToken(t *testing.T) {
	cl := startServer(t)
	tok, err := cl.store.Create(context.Background(), cl.ca, time.Minute, "short")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	first, err := Client{Servers: []string{cl.url}, Token: tok}.Run(context.Background(), node("n1", pwA), dir)
	if err != nil {
		t.Fatal(err)
	}
	before := readCert(t, filepath.Join(dir, KubeletClient+".crt"))
	// The token expires (and is then deleted): the node still renews with its credentials.
	cl.clock = cl.clock.Add(2 * time.Minute)
	cl.store.Delete(context.Background(), tok.ID)
	st, err := Stored(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := Client{Servers: []string{"https://127.0.0.1:1"}, Token: tok, Timeout: 2 * time.Second}
	res, err := c.Renew(context.Background(), st, dir, node("n1", pwA))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Write(dir); err != nil {
		t.Fatal(err)
	}
	after := readCert(t, filepath.Join(dir, KubeletClient+".crt"))
	if after.Equal(before) || after.Subject.CommonName != "system:node:n1" || res.Server != first.Server {
		t.Errorf("renewed %v from %s", after.Subject, res.Server)
	}
	// Wrong node password, or another node's name, with these credentials: refused.
	var r *RefusedError
	if _, err := c.Renew(context.Background(), st, dir, node("n1", pwB)); !errors.As(err, &r) || r.Failure.Reason != ReasonNodeTaken {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := c.Renew(context.Background(), st, dir, node("n2", pwA)); !errors.As(err, &r) || r.Failure.Reason != ReasonNotNode {
		t.Errorf("other node: %v", err)
	}
	// Once the node is deleted (its record with it), its credentials renew no more.
	if err := cl.client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(context.Background(), SecretName("n1"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Renew(context.Background(), st, dir, node("n1", pwA)); !errors.As(err, &r) || r.Failure.Reason != ReasonNotNode || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("deleted node: %v", err)
	}
	// No client certificate, or one from another CA: refused.
	evil, _ := pki.EnsureCluster(pki.ClusterSpec{Dir: t.TempDir(), NodeName: "n1", NodeIP: net.ParseIP("127.0.0.1")})
	bad, _ := tls.LoadX509KeyPair(evil.Path(pki.Kubelet, ".crt"), evil.Path(pki.Kubelet, ".key"))
	req, _, _ := newRequest(node("n1", pwA))
	if _, err := c.RenewWith(context.Background(), cl.url, cl.ca, bad, req); !errors.As(err, &r) || r.Failure.Reason != ReasonNotNode {
		t.Errorf("foreign certificate: %v", err)
	}
	if _, err := c.post(context.Background(), cl.url, RenewPath, cl.ca, nil, req); !errors.As(err, &r) || r.Failure.Reason != ReasonNotNode {
		t.Errorf("no certificate: %v", err)
	}
}

func TestRefusalsSayLittle(t *testing.T) {
	cl := startServer(t)
	run := func(tk token.Token, n Node) error {
		_, err := Client{Servers: []string{cl.url}, Token: tk}.Fetch(context.Background(), n)
		return err
	}
	unknown := token.Token{CAHash: cl.cluster.CAHash, ID: "zzzzzz", Secret: cl.cluster.Secret}
	wrong := token.Token{CAHash: cl.cluster.CAHash, ID: cl.cluster.ID, Secret: "0000000000000000"}
	extra, _ := cl.store.Create(context.Background(), cl.ca, time.Minute, "")
	wrongExtra := token.Token{CAHash: extra.CAHash, ID: extra.ID, Secret: "0000000000000000"}
	cl.clock = cl.clock.Add(2 * time.Minute) // extra has expired
	var msgs []string
	for _, tk := range []token.Token{unknown, wrong, wrongExtra} {
		err := run(tk, node("n1", pwA))
		var r *RefusedError
		if !errors.As(err, &r) || r.Failure.Reason != ReasonTokenUnknown {
			t.Fatalf("%v", err)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Errorf("refusals differ:\n%s", strings.Join(msgs, "\n"))
	}
	// Expiry is told to the holder of the secret only.
	if err := run(extra, node("n1", pwA)); err == nil || !strings.Contains(err.Error(), "expired token") {
		t.Errorf("expired: %v", err)
	}
	// A name of the apiserver is no node name.
	if err := run(cl.cluster, node("kubernetes.default.svc.cluster.local", pwA)); err == nil || !strings.Contains(err.Error(), "name of the API server") {
		t.Errorf("apiserver name: %v", err)
	}
}

func TestFailedAttemptsLimited(t *testing.T) {
	cl := startServer(t)
	cl.handler.Limiter = &Limiter{Every: time.Hour, Burst: 3}
	wrong := token.Token{CAHash: cl.cluster.CAHash, ID: cl.cluster.ID, Secret: "0000000000000000"}
	c := Client{Servers: []string{cl.url}, Token: wrong}
	for i := 0; i < 3; i++ {
		if _, err := c.Fetch(context.Background(), node("n1", pwA)); err == nil || !strings.Contains(err.Error(), "wrong token") {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Attempts made at once cannot all pass before their failures count.
	cl.handler.Limiter = &Limiter{Every: time.Hour, Burst: 3}
	var wg sync.WaitGroup
	var tooMany atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r *RefusedError
			if _, err := c.Fetch(context.Background(), node("n1", pwA)); errors.As(err, &r) && r.Failure.Reason == ReasonTooMany {
				tooMany.Add(1)
			}
		}()
	}
	wg.Wait()
	if tooMany.Load() != 5 {
		t.Errorf("%d of 8 concurrent attempts refused as too many, want 5", tooMany.Load())
	}
	// Now even the right token waits: the address used up its failures.
	_, err := Client{Servers: []string{cl.url}, Token: cl.cluster}.Fetch(context.Background(), node("n1", pwA))
	var r *RefusedError
	if !errors.As(err, &r) || r.Failure.Reason != ReasonTooMany {
		t.Fatalf("after 3 failures: %v", err)
	}
}

// A Node registered without a join (the server's own node from before node passwords) is not
// for a token holder to take; the refusal names the way out.
func TestRegisteredNodeWithoutPasswordRefused(t *testing.T) {
	cl := startServer(t)
	if _, err := cl.client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "s1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Client{Servers: []string{cl.url}, Token: cl.cluster}.Fetch(context.Background(), node("s1", pwA))
	var r *RefusedError
	if !errors.As(err, &r) || r.Failure.Reason != ReasonNodeTaken || !strings.Contains(err.Error(), "kubectl delete node s1") {
		t.Fatalf("err = %v", err)
	}
	// The server itself takes it; after that, only its password matches.
	p := Passwords{Client: cl.client}
	if replaced, err := p.Take(context.Background(), "s1", pwB); err != nil || replaced {
		t.Fatal(replaced, err)
	}
	if err := p.Verify(context.Background(), "s1", pwA); !errors.Is(err, ErrNodeTaken) {
		t.Errorf("other password after the claim: %v", err)
	}
	if err := p.Verify(context.Background(), "s1", pwB); err != nil {
		t.Errorf("the claimant: %v", err)
	}
	// A server that lost its password file takes its name back.
	if replaced, err := p.Take(context.Background(), "s1", pwA); err != nil || !replaced {
		t.Errorf("retake: %v %v", replaced, err)
	}
}

// The server's own node name is refused to every join and renewal, whatever the records say.
func TestServerOwnNodeRefused(t *testing.T) {
	cl := startServer(t)
	cl.handler.Own = "s1"
	_, err := Client{Servers: []string{cl.url}, Token: cl.cluster}.Fetch(context.Background(), node("s1", pwA))
	var r *RefusedError
	if !errors.As(err, &r) || r.Failure.Reason != ReasonNodeTaken || !strings.Contains(err.Error(), "server's own node") {
		t.Fatalf("err = %v", err)
	}
	if err := (Passwords{Client: cl.client}).Check(context.Background(), "s1", pwA); err == nil {
		t.Error("a refused join left a record")
	}
}

// A server still starting (RBAC not applied) answers "try again", and the agent does.
func TestRetriesWhileServerStarts(t *testing.T) {
	cl := startServer(t)
	var calls atomic.Int32
	check := cl.handler.CheckAuth
	cl.handler.CheckAuth = func(ctx context.Context, tk token.Token) error {
		if calls.Add(1) < 3 {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", errors.New("RBAC not there yet"))
		}
		return check(ctx, tk)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := (Client{Servers: []string{cl.url}, Token: cl.cluster, Retry: 50 * time.Millisecond}).Fetch(ctx, node("n1", pwA)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls", calls.Load())
	}
}

// IPv6 guesses are counted per /64: one host holds a whole /64, and would otherwise get a
// fresh budget per address.
func TestLimiterKeysIPv6By64(t *testing.T) {
	l := &Limiter{Every: time.Hour, Burst: 2}
	for i, addr := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
		done, ok := l.Begin(addr)
		if !ok {
			t.Fatalf("attempt %d refused", i)
		}
		done(true)
	}
	if _, ok := l.Begin("2001:db8:1:2:ffff::9"); ok {
		t.Error("a third failure from the same /64 was let through")
	}
	if done, ok := l.Begin("2001:db8:1:3::1"); !ok {
		t.Error("another /64 refused")
	} else {
		done(false)
	}
	// IPv4 stays per address.
	for _, addr := range []string{"192.0.2.1", "192.0.2.1"} {
		done, _ := l.Begin(addr)
		done(true)
	}
	if _, ok := l.Begin("192.0.2.2"); !ok {
		t.Error("a neighbouring IPv4 address refused")
	}
}
