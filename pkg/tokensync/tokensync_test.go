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
	if err := Publish(ctx, kv, Cluster, old, agent, next); err != nil {
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
	if p, _ := Pending(ctx, kv, Cluster); p == nil || !p.Done {
		t.Errorf("the rotation record after it finished: %+v", p)
	}
	// Steps after that change nothing.
	if changed, err := s1.Step(ctx); err != nil || changed {
		t.Errorf("a later step: %v %v", changed, err)
	}
	// s3 comes back: it stored its old entry before it took the rotation, which stays for it.
	kv.Set(ctx, oldKey, []byte("sealed with old, again"))
	gone.Now = clock
	if changed, err := gone.Step(ctx); err != nil || !changed {
		t.Fatalf("s3 back: %v %v", changed, err)
	}
	if done, err := Finish(ctx, kv, Cluster, newKey, now); err != nil || !done {
		t.Fatalf("Finish after s3 came back = %v, %v", done, err)
	}
	if b, _, _ := kv.Get(ctx, oldKey); b != nil {
		t.Error("the old entry s3 stored on its way back is still there")
	}
	// A rotation to a token in use, or while one is under way, is refused.
	if err := Publish(ctx, kv, Cluster, next, agent, agent); err == nil {
		t.Error("rotated the cluster token to the agent token")
	}
	other, _ := token.Generate(ca)
	same := other
	same.ID = next.ID
	if err := Publish(ctx, kv, Cluster, next, agent, same); err == nil {
		t.Error("rotated to a token with the current one's ID")
	}
	if err := Publish(ctx, kv, Agent, next, agent, other); err != nil {
		t.Fatal(err)
	}
	third, _ := token.Generate(ca)
	if err := Publish(ctx, kv, Cluster, next, other, third); !errors.Is(err, ErrBusy) {
		t.Errorf("a cluster rotation while the agent's is under way: %v", err)
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
	if err := Publish(ctx, kv, Agent, cluster, agent, next); err != nil {
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
	// The record of that rotation, put back later (a restored snapshot, a replay), does not
	// take a server that moved on back to the older token.
	old, _, _ := kv.Get(ctx, rotationKey(Agent))
	later, _ := token.Generate(ca)
	if err := Publish(ctx, kv, Agent, cluster, next, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Step(ctx); err != nil {
		t.Fatal(err)
	}
	kv.Set(ctx, rotationKey(Agent), old)
	if _, err := s1.Step(ctx); !errors.Is(err, ErrMissed) {
		t.Errorf("a replayed record: %v", err)
	}
	if cur, _ := s1.Files.Agent.Current(); !cur.Matches(later) {
		t.Errorf("a replayed record took the agent token back to %s", cur.ID)
	}
}

// A cluster rotation right after an agent rotation that a server has not taken yet: the
// server takes both, the agent token's first (it is sealed with the older cluster token).
func TestAgentThenClusterRotation(t *testing.T) {
	ctx := context.Background()
	ca := testCA(t)
	c1, _ := token.Generate(ca)
	a1, _ := token.DeriveAgent(c1)
	a2, _ := token.Generate(ca)
	c2, _ := token.Generate(ca)
	kv := &memKV{m: map[string][]byte{}}
	s := newServer(t, kv, "s1", c1, a1, time.Now)
	if err := Publish(ctx, kv, Agent, c1, a1, a2); err != nil {
		t.Fatal(err)
	}
	// Published by hand past the busy check: as if another server's CLI ran at the same time.
	plain, _ := json.Marshal(payload{From: c1.ID, Token: c2.ID + "." + c2.Secret})
	sealed, _ := bootstrap.SealBytes(plain, c1, rotationKey(Cluster))
	b, _ := json.Marshal(Rotation{Sealer: c1.ID, To: c2.ID, Sealed: sealed})
	kv.Set(ctx, rotationKey(Cluster), b)
	if changed, err := s.Step(ctx); err != nil || !changed {
		t.Fatalf("Step = %v %v", changed, err)
	}
	if a, _ := s.Files.Agent.Current(); !a.Matches(a2) {
		t.Errorf("agent token %s, want %s", a.ID, a2.ID)
	}
	if c, _ := s.Files.Cluster.Current(); !c.Matches(c2) {
		t.Errorf("cluster token %s, want %s", c.ID, c2.ID)
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
	agent, _ := token.DeriveAgent(mine)
	s := newServer(t, kv, "s1", mine, agent, time.Now)
	Publish(ctx, kv, Cluster, other, agent, next)
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
