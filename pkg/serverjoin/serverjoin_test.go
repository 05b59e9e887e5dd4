package serverjoin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

type fixture struct {
	url     string
	tok     token.Token
	added   []MemberRequest
	ca      *pki.CA
	members string
	// busy is how many member adds etcd refuses first (another learner pending).
	busy int
	// passwords are the node passwords on record, by name.
	passwords map[string]string
}

const s2Password = "s2-own-node-password"

// serve runs the handler over TLS from a real CA, beside the CA path agents use, as the
// apiserver serves them.
func serve(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "server-ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(dir, "serving", pki.Spec{CommonName: "apiserver", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Generate(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{tok: tok, ca: ca, members: "s1=https://10.0.0.1:2380,s2=https://10.0.0.2:2380",
		passwords: map[string]string{"s2": s2Password}}
	h := &Handler{Token: func() (token.Token, error) { return tok, nil },
		Data: func() (*bootstrap.Data, error) {
			files := map[string][]byte{"tls/server-ca.crt": ca.CertPEM, "tls/etcd/ca.key": []byte("key")}
			for _, n := range []string{"server-ca.key", "client-ca.crt", "client-ca.key", "request-header-ca.crt", "request-header-ca.key",
				"kubelet-serving-ca.crt", "kubelet-serving-ca.key", "service.key"} {
				files["tls/"+n] = []byte(n)
			}
			return &bootstrap.Data{Files: files}, nil
		},
		Bind: func(_ context.Context, name, pw string) error {
			if have, ok := f.passwords[name]; ok && have != pw {
				return fmt.Errorf("%w: node %q belongs to another machine", join.ErrNodeTaken, name)
			}
			f.passwords[name] = pw
			return nil
		},
		AddMember: func(_ context.Context, name, peerURL string) (string, error) {
			if f.busy > 0 {
				f.busy--
				return "", errors.New("etcd member add " + peerURL + ": etcdserver: too many learner members in cluster")
			}
			f.added = append(f.added, MemberRequest{Name: name, PeerURL: peerURL})
			return f.members, nil
		},
		OwnName: "s1", OwnPeerURL: "https://10.0.0.1:2380", Limiter: &join.Limiter{}}
	mux := http.NewServeMux()
	mux.HandleFunc(join.CACertsPath, func(w http.ResponseWriter, _ *http.Request) { w.Write(ca.CertPEM) })
	mux.Handle(BootstrapPath, h)
	mux.Handle(MemberPath, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func TestBootstrapAndMember(t *testing.T) {
	f := serve(t)
	ctx := context.Background()
	c := Client{Server: f.url, Token: f.tok, Password: s2Password}
	d, err := c.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Files["tls/etcd/ca.key"]) != "key" || string(d.Files["tls/server-ca.crt"]) != string(f.ca.CertPEM) {
		t.Fatalf("bootstrap data %v", d.Names())
	}
	initial, err := c.AddMember(ctx, "s2", "https://10.0.0.2:2380")
	if err != nil || initial != f.members {
		t.Fatalf("AddMember = %q %v", initial, err)
	}
	if len(f.added) != 1 || f.added[0].Name != "s2" {
		t.Fatalf("added %v", f.added)
	}
}

// Servers started together: etcd admits one learner at a time, so the others' member adds are
// refused (503) until it is promoted. The join waits its turn, one line per retry; a final
// refusal is not retried; patience runs out with the last refusal.
func TestAddMemberWaitsItsTurn(t *testing.T) {
	f := serve(t)
	f.busy = 3
	var slept []time.Duration
	var log strings.Builder
	c := Client{Server: f.url, Token: f.tok, Password: s2Password, Log: slog.New(slog.NewTextHandler(&log, nil)),
		sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	initial, err := c.AddMember(context.Background(), "s2", "https://10.0.0.2:2380")
	if err != nil || initial != f.members {
		t.Fatalf("AddMember = %q %v", initial, err)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(slept, want) {
		t.Errorf("waited %v, want %v", slept, want)
	}
	if n := strings.Count(log.String(), "too many learner members"); n != 3 {
		t.Errorf("%d retry lines, want 3:\n%s", n, log.String())
	}

	f.busy, slept = 100, nil
	c.Patience = 10 * time.Second
	_, err = c.AddMember(context.Background(), "s2", "https://10.0.0.2:2380")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "(503)") || !strings.Contains(err.Error(), "too many learner") {
		t.Errorf("after patience: %v", err)
	}
	if len(slept) == 0 || len(slept) > 4 {
		t.Errorf("retries within 10 s of patience: %v", slept)
	}

	f.busy, slept = 0, nil
	c.Password = "a-stranger-password" // s2 is another machine's: final
	if _, err := c.AddMember(context.Background(), "s2", "https://10.0.0.2:2380"); err == nil || len(slept) != 0 {
		t.Errorf("a taken name: %v, retried %v", err, slept)
	}
}

func TestRefusals(t *testing.T) {
	f := serve(t)
	ctx := context.Background()
	// Another token with the right pin (an agent token, or a guess) gets nothing.
	other := f.tok
	other.ID, other.Secret = "abcdef", "0123456789abcdef"
	_, err := Client{Server: f.url, Token: other}.Bootstrap(ctx)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "token not accepted") {
		t.Errorf("other token: %v", err)
	}
	if _, err := (Client{Server: f.url, Token: other}).AddMember(ctx, "evil", "https://10.0.0.9:2380"); err == nil {
		t.Error("member added with another token")
	}
	// A token pinning another CA: someone in the middle, or another cluster.
	elsewhere, err := pki.LoadOrCreateCA(t.TempDir(), "ca", "other")
	if err != nil {
		t.Fatal(err)
	}
	pinned, _ := token.Generate(elsewhere.CertPEM)
	pinned.ID, pinned.Secret = f.tok.ID, f.tok.Secret
	if _, err := (Client{Server: f.url, Token: pinned}).Bootstrap(ctx); !errors.Is(err, token.ErrPinMismatch) {
		t.Errorf("other pin: %v", err)
	}
	c := Client{Server: f.url, Token: f.tok, Password: "a-stranger-password"}
	for _, m := range []MemberRequest{
		{Name: "s1", PeerURL: "https://10.0.0.5:2380"},                     // the server's own name
		{Name: "s5", PeerURL: "https://10.0.0.1:2380"},                     // its own peer URL
		{Name: "s5,x=https://1.2.3.4:1", PeerURL: "https://10.0.0.5:2380"}, // smuggling a second member
		{Name: "s5", PeerURL: "https://10.0.0.5:2380,x=https://1.2.3.4:1"},
		{Name: "s5", PeerURL: "http://10.0.0.5:2380"},
		{Name: "s5", PeerURL: "https://host.example:2380"},
		// s2's name, bound to another machine's node password: the cluster token is not enough
		// to replace a live server's member.
		{Name: "s2", PeerURL: "https://10.0.0.2:2380"},
	} {
		if _, err := c.AddMember(ctx, m.Name, m.PeerURL); err == nil {
			t.Errorf("member %v accepted", m)
		}
	}
	if _, err := (Client{Server: f.url, Token: f.tok}).AddMember(ctx, "s6", "https://10.0.0.6:2380"); err == nil ||
		!strings.Contains(err.Error(), "node password") {
		t.Errorf("member add without a node password: %v", err)
	}
	if len(f.added) != 0 {
		t.Errorf("added %v", f.added)
	}
	if _, err := (Client{Server: "https://127.0.0.1:1", Token: f.tok}).Bootstrap(ctx); !errors.Is(err, join.ErrUnreachable) {
		t.Errorf("no server: %v", err)
	}
}
