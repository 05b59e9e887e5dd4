package tokensync

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/token"
)

type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, ok := k.m[key]; ok {
		return v, 1, nil
	}
	return nil, 0, nil
}
func (k *memKV) Set(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
	return nil
}
func (k *memKV) Delete(_ context.Context, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}
func (k *memKV) Keys(_ context.Context, prefix string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for key := range k.m {
		if strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out, nil
}

func testCA(t *testing.T) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

type fakeServer struct {
	*Server
	dir string
}

func newServer(t *testing.T, kv KV, name string, cluster, agent token.Token, now func() time.Time) fakeServer {
	dir := t.TempDir()
	write := func(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
	write(filepath.Join(dir, "token"), []byte(cluster.String()+"\n"))
	write(filepath.Join(dir, "agent-token"), []byte(agent.String()+"\n"))
	return fakeServer{&Server{Name: name, KV: kv, Now: now,
		Files: Files{Cluster: &token.File{Path: filepath.Join(dir, "token")}, Agent: &token.File{Path: filepath.Join(dir, "agent-token")}, Write: write}}, dir}
}

// A cluster token rotated on one server reaches the others; the bootstrap entry sealed with the
// old one and the rotation record go once every running server took it, not before.
func TestClusterRotation(t *testing.T) {
	ctx := context.Background()
	ca := testCA(t)
	old, _ := token.Generate(ca)
	agent, _ := token.DeriveAgent(old)
	next, _ := token.Generate(ca)
	kv := &memKV{m: map[string][]byte{}}
	now := time.Now()
	clock := func() time.Time { return now }
	s1 := newServer(t, kv, "s1", old, agent, clock)
	s2 := newServer(t, kv, "s2", old, agent, clock)
	gone := newServer(t, kv, "s3", old, agent, func() time.Time { return now.Add(-time.Hour) })
	for _, s := range []fakeServer{s1, s2, gone} {
		if _, err := s.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	oldKey, newKey := bootstrap.Key(old), bootstrap.Key(next)
	kv.Set(ctx, oldKey, []byte("sealed with old"))
	if err := Publish(ctx, kv, Cluster, old, next); err != nil {
		t.Fatal(err)
	}
	changed, err := s1.Step(ctx)
	if err != nil || !changed {
		t.Fatalf("s1 Step = %v, %v", changed, err)
	}
	if cur, _ := s1.Files.Cluster.Current(); cur.ID != next.ID || cur.Secret != next.Secret || cur.CAHash != old.CAHash {
		t.Fatalf("s1 token after the rotation: %v", cur)
	}
	kv.Set(ctx, newKey, []byte("sealed with new")) // s1's keeper stores it
	if done, err := Finish(ctx, kv, Cluster, newKey, now); err != nil || done {
		t.Fatalf("finished with s2 behind: %v %v", done, err)
	}
	if b, _, _ := kv.Get(ctx, oldKey); b == nil {
		t.Fatal("the old token's entry went while s2 still runs on it")
	}
	if _, err := s2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s2.Files.Cluster.Current(); cur.ID != next.ID {
		t.Fatalf("s2 did not take the rotation: %v", cur)
	}
	// s3 has not reported for an hour: not running, it does not hold the rotation back.
	if done, err := Finish(ctx, kv, Cluster, newKey, now); err != nil || !done {
		t.Fatalf("Finish = %v, %v", done, err)
	}
	if b, _, _ := kv.Get(ctx, oldKey); b != nil {
		t.Error("the entry sealed with the old token is still there")
	}
	if b, _, _ := kv.Get(ctx, newKey); b == nil {
		t.Error("the new token's entry was removed")
	}
	if p, _ := Pending(ctx, kv, Cluster); p != nil {
		t.Error("the rotation record is still there")
	}
	// Steps after that change nothing.
	if changed, err := s1.Step(ctx); err != nil || changed {
		t.Errorf("a later step: %v %v", changed, err)
	}
}

func TestAgentRotation(t *testing.T) {
	ctx := context.Background()
	ca := testCA(t)
	cluster, _ := token.Generate(ca)
	agent, _ := token.DeriveAgent(cluster)
	next, _ := token.Generate(ca)
	kv := &memKV{m: map[string][]byte{}}
	now := time.Now()
	s1 := newServer(t, kv, "s1", cluster, agent, func() time.Time { return now })
	if err := Publish(ctx, kv, Agent, cluster, next); err != nil {
		t.Fatal(err)
	}
	// Not taken yet: the rotation is not done.
	s1.report(ctx, cluster.ID, agent.ID)
	if done, _ := Finish(ctx, kv, Agent, "", now); done {
		t.Fatal("done before any server took it")
	}
	if changed, err := s1.Step(ctx); err != nil || !changed {
		t.Fatalf("Step = %v %v", changed, err)
	}
	if cur, _ := s1.Files.Agent.Current(); !cur.Matches(next) {
		t.Fatalf("agent token %v", cur)
	}
	if cur, _ := s1.Files.Cluster.Current(); !cur.Matches(cluster) {
		t.Fatal("an agent rotation changed the cluster token")
	}
	if done, err := Finish(ctx, kv, Agent, "", now); err != nil || !done {
		t.Fatalf("Finish = %v %v", done, err)
	}
}

// A record sealed with a cluster token the server never held is refused, not guessed at; a
// damaged one is too.
func TestRotationNotForUs(t *testing.T) {
	ctx := context.Background()
	ca := testCA(t)
	mine, _ := token.Generate(ca)
	other, _ := token.Generate(ca)
	next, _ := token.Generate(ca)
	kv := &memKV{m: map[string][]byte{}}
	s := newServer(t, kv, "s1", mine, next, time.Now)
	Publish(ctx, kv, Cluster, other, next)
	if _, err := s.Step(ctx); !errors.Is(err, ErrNotSealedForUs) {
		t.Errorf("a rotation sealed with another token: %v", err)
	}
	forged, _ := Pending(ctx, kv, Cluster)
	forged.Sealer = mine.ID
	b, _ := jsonOf(forged)
	kv.Set(ctx, rotationKey(Cluster), b)
	if _, err := s.Step(ctx); err == nil {
		t.Error("a record that does not open with this server's token was taken")
	}
	if cur, _ := s.Files.Cluster.Current(); !cur.Matches(mine) {
		t.Error("the token file changed")
	}
}

func jsonOf(r *Rotation) ([]byte, error) { return json.Marshal(r) }
