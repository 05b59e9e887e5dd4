package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

type testCluster struct {
	url     string
	ca      []byte
	cluster token.Token
	store   token.Store
	clock   time.Time
	client  *fake.Clientset
	handler *Handler
}

// startServer serves the join API over TLS with a serving cert from the cluster's CA, as the
// apiserver does.
func startServer(t *testing.T) *testCluster {
	t.Helper()
	dir := t.TempDir()
	b, err := pki.EnsureCluster(pki.ClusterSpec{Dir: dir, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NodeName: "server", NodeIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	cl := &testCluster{ca: b.ServerCA.CertPEM, clock: time.Now()}
	if cl.cluster, err = token.Generate(cl.ca); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	cl.store = token.Store{Client: client, Now: func() time.Time { return cl.clock }}
	cl.client = client
	cl.handler = &Handler{ServerCA: b.ServerCA, ClientCA: b.ClientCA, KubeletCA: b.KubeletCA, Passwords: Passwords{Client: client},
		Reserved: []string{"localhost", "kubernetes"},
		Settings: testSettings(),
		CheckAuth: func(ctx context.Context, tk token.Token) error {
			if cl.cluster.Matches(tk) {
				return nil
			}
			return cl.store.Check(ctx, tk)
		}}
	srv := httptest.NewUnstartedServer(cl.handler)
	cert, err := tls.LoadX509KeyPair(b.Path(pki.APIServerServing, ".crt"), b.Path(pki.APIServerServing, ".key"))
	if err != nil {
		t.Fatal(err)
	}
	// As the apiserver does: a client certificate is asked for, not required.
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cl.url = srv.URL
	return cl
}

func testSettings() cluster.Settings {
	_, pods, _ := net.ParseCIDR("10.42.0.0/16")
	_, svcs, _ := net.ParseCIDR("10.43.0.0/16")
	return cluster.Settings{ClusterCIDR: pods, ServiceCIDR: svcs, ClusterDNS: net.ParseIP("10.43.0.10"), ClusterDomain: "cluster.local", FlannelBackend: "vxlan"}
}

func node(name, pw string) Node { return Node{Name: name, IP: "10.0.0.2", Password: pw} }

const pwA, pwB = "aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"

func TestJoinWritesSignedCredentials(t *testing.T) {
	cl := startServer(t)
	dir := filepath.Join(t.TempDir(), "tls")
	// The first URL answers nothing: the agent moves on to the next.
	c := Client{Servers: []string{"https://127.0.0.1:1", cl.url}, Token: cl.cluster, Timeout: 2 * time.Second}
	res, err := c.Run(context.Background(), node("n1", pwA), dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != cl.url || res.Settings.ClusterCIDR.String() != "10.42.0.0/16" {
		t.Errorf("result %+v", res)
	}
	clientCA := readCert(t, filepath.Join(dir, pki.ClientCA+".crt"))
	kc := readCert(t, filepath.Join(dir, KubeletClient+".crt"))
	if kc.Subject.CommonName != "system:node:n1" || kc.Subject.Organization[0] != "system:nodes" || kc.CheckSignatureFrom(clientCA) != nil {
		t.Errorf("kubelet client cert %v", kc.Subject)
	}
	// The serving certificate names the node and the address the join came from (not the
	// 10.0.0.2 the agent claimed), and comes from the kubelet CA, not the server CA.
	sc := readCert(t, filepath.Join(dir, KubeletServing+".crt"))
	if len(sc.IPAddresses) != 1 || sc.IPAddresses[0].String() != "127.0.0.1" || len(sc.DNSNames) != 1 || sc.DNSNames[0] != "n1" {
		t.Errorf("serving cert names %v %v", sc.IPAddresses, sc.DNSNames)
	}
	if sc.CheckSignatureFrom(cl.handler.KubeletCA.Cert) != nil || sc.CheckSignatureFrom(cl.handler.ServerCA.Cert) == nil {
		t.Error("serving cert not signed by the kubelet CA alone")
	}
	if ca, _ := os.ReadFile(filepath.Join(dir, pki.ServerCA+".crt")); string(ca) != string(cl.ca) {
		t.Error("server-ca.crt is not the pinned CA")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, ProxyClient+".crt"), filepath.Join(dir, ProxyClient+".key")); err != nil {
		t.Errorf("kube-proxy pair: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KubeletClient+".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v %v", fi, err)
	}
	st, err := Stored(dir)
	if err != nil || st.Server != cl.url || st.Settings.ClusterDNS.String() != "10.43.0.10" || len(st.CAPEM) == 0 {
		t.Errorf("stored join %+v %v", st, err)
	}
	if err := st.Write(dir); err != nil {
		t.Errorf("a stored result writes nothing: %v", err)
	}
	os.Remove(filepath.Join(dir, ProxyClient+".key"))
	if _, err := Stored(dir); err == nil {
		t.Error("stored join without the kube-proxy key accepted")
	}
}

func readCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJoinRefusals(t *testing.T) {
	cl := startServer(t)
	other, _ := token.Generate(cl.ca)
	otherCA := token.Token{CAHash: "00" + cl.cluster.CAHash[2:], ID: cl.cluster.ID, Secret: cl.cluster.Secret}
	for _, tc := range []struct {
		name    string
		servers []string
		tok     token.Token
		check   func(error) bool
	}{
		{"wrong token", []string{cl.url}, other, func(err error) bool {
			var r *RefusedError
			return errors.As(err, &r) && r.Failure.Reason == ReasonTokenUnknown
		}},
		{"CA pin mismatch", []string{cl.url}, otherCA, func(err error) bool { return errors.Is(err, token.ErrPinMismatch) }},
		{"unreachable", []string{"https://127.0.0.1:1"}, cl.cluster, func(err error) bool { return errors.Is(err, ErrUnreachable) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			_, err := Client{Servers: tc.servers, Token: tc.tok, Timeout: 2 * time.Second}.Run(context.Background(), node("n1", pwA), dir)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			t.Logf("%v", err)
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("credentials left behind: %v", err)
			}
		})
	}
}

func TestExpiringTokenAndNodePassword(t *testing.T) {
	cl := startServer(t)
	tok, err := cl.store.Create(context.Background(), cl.ca, time.Minute, "test")
	if err != nil {
		t.Fatal(err)
	}
	run := func(name, pw string) error {
		_, err := Client{Servers: []string{cl.url}, Token: tok}.Run(context.Background(), node(name, pw), filepath.Join(t.TempDir(), "tls"))
		return err
	}
	if err := run("n1", pwA); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	// Another machine under the same name is refused; the same machine is welcome again.
	var r *RefusedError
	if err := run("n1", pwB); !errors.As(err, &r) || r.Failure.Reason != ReasonNodeTaken {
		t.Fatalf("other machine: %v", err)
	}
	if err := run("n1", pwA); err != nil {
		t.Fatalf("same machine again: %v", err)
	}
	cl.clock = cl.clock.Add(2 * time.Minute)
	if err := run("n2", pwA); !errors.As(err, &r) || r.Failure.Reason != ReasonTokenExpired {
		t.Fatalf("expired: %v", err)
	}
}

func TestNodePasswordFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node", "password")
	a, fresh, err := NodePassword(p)
	if err != nil || len(a) < 32 || !fresh {
		t.Fatal(a, fresh, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Error("password stored before a join succeeded")
	}
	if err := SaveNodePassword(p, a); err != nil {
		t.Fatal(err)
	}
	b, fresh, _ := NodePassword(p)
	if a != b || fresh {
		t.Error("password changed between reads")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}
