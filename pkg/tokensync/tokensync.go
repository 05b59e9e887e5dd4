// Package tokensync carries a rotated cluster or agent token to every server through the
// datastore, so `outpost token rotate` on one server takes effect on all of them. The new
// token travels sealed with one the servers still hold (the cluster token before the
// rotation); each server takes it into its token file within seconds and reports, under its
// own key, the token IDs it runs on. Once every running server reports the new one, the
// bootstrap data sealed with older tokens is removed and the record marked done: from then on
// the old token opens nothing in the datastore and joins through no server. The record stays,
// so a server that was down takes the new token when it starts again.
package tokensync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/token"
)

// Kind is which token rotates.
type Kind string

const (
	Cluster Kind = "cluster"
	Agent   Kind = "agent"
)

const (
	rotationPrefix = "/outpost/token-rotation/"
	serversPrefix  = "/outpost/servers/"
	// Live: a server that reported within this long counts as running; one gone longer (shut
	// down, removed) does not hold a rotation back. Its next start finds the record, if it
	// is still there, or its token refused everywhere.
	Live = 10 * time.Minute
	// heartbeat is how often a server reports while nothing changes.
	heartbeat = time.Minute
)

// KV is the datastore as tokensync uses it (datastore.KV).
type KV interface {
	Get(ctx context.Context, key string) ([]byte, int64, error)
	Set(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Rotation is the stored record: the new token sealed with the cluster token named Sealer.
type Rotation struct {
	Sealer string `json:"sealer"` // ID of the cluster token it is sealed with
	To     string `json:"to"`     // ID of the new token
	Sealed []byte `json:"sealed"` // a payload
	// Done: every running server took it and what older tokens opened is gone.
	Done bool `json:"done,omitempty"`
}

// payload is what is sealed: the new token and the one it replaces, so that an old record
// put back (a restored snapshot, a replay) never takes a server back to an older token.
type payload struct {
	From  string `json:"from"` // ID of the token it replaces
	Token string `json:"token"`
}

// Report is what a server stores under its name.
type Report struct {
	Token      string    `json:"token"`      // cluster token ID
	AgentToken string    `json:"agentToken"` // agent token ID
	Seen       time.Time `json:"seen"`
}

func rotationKey(k Kind) string { return rotationPrefix + string(k) }

// Publish stores the rotation of kind to next, sealed with the cluster token now in use;
// cluster and agent are the tokens now in use. A new token must differ from both, by ID too:
// servers and their reports tell tokens apart by ID.
func Publish(ctx context.Context, kv KV, k Kind, cluster, agent, next token.Token) error {
	if err := distinct(next, cluster, agent); err != nil {
		return err
	}
	from := cluster
	if k == Agent {
		from = agent
	}
	for _, other := range []Kind{Cluster, Agent} {
		if p, err := Pending(ctx, kv, other); err != nil {
			return err
		} else if p != nil && !p.Done {
			return fmt.Errorf("%w: the %s token's rotation to %s is not done on every server yet", ErrBusy, other, p.To)
		}
	}
	key := rotationKey(k)
	plain, err := json.Marshal(payload{From: from.ID, Token: next.ID + "." + next.Secret})
	if err != nil {
		return err
	}
	sealed, err := bootstrap.SealBytes(plain, cluster, key)
	if err != nil {
		return err
	}
	b, err := json.Marshal(Rotation{Sealer: cluster.ID, To: next.ID, Sealed: sealed})
	if err != nil {
		return err
	}
	if err := kv.Set(ctx, key, b); err != nil {
		return fmt.Errorf("store the token rotation in the datastore: %w", err)
	}
	return nil
}

// ErrBusy is a rotation asked for while another is under way.
var ErrBusy = errors.New("a token rotation is under way")

// distinct refuses a new token that is, or shares its ID with, a token in use.
func distinct(next token.Token, inUse ...token.Token) error {
	for _, t := range inUse {
		if next.ID == t.ID || next.Matches(t) {
			return fmt.Errorf("the new token's ID %s is that of a token in use: give another", next.ID)
		}
	}
	return nil
}

// Pending is the rotation of kind still in the datastore; nil when none (done, or never).
func Pending(ctx context.Context, kv KV, k Kind) (*Rotation, error) {
	b, _, err := kv.Get(ctx, rotationKey(k))
	if err != nil || b == nil {
		return nil, err
	}
	var r Rotation
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("token rotation record: %w", err)
	}
	return &r, nil
}

// Servers reads every server's report, by name.
func Servers(ctx context.Context, kv KV) (map[string]Report, error) {
	keys, err := kv.Keys(ctx, serversPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]Report{}
	for _, k := range keys {
		b, _, err := kv.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var r Report
		if b == nil || json.Unmarshal(b, &r) != nil {
			continue
		}
		out[strings.TrimPrefix(k, serversPrefix)] = r
	}
	return out, nil
}

// Behind names the running servers (reported within Live of now) not yet on the token ID to,
// sorted; and the servers not running.
func Behind(servers map[string]Report, k Kind, to string, now time.Time) (behind, gone []string) {
	for name, r := range servers {
		switch {
		case now.Sub(r.Seen) > Live:
			gone = append(gone, name)
		case (k == Cluster && r.Token != to) || (k == Agent && r.AgentToken != to):
			behind = append(behind, name)
		}
	}
	sort.Strings(behind)
	sort.Strings(gone)
	return behind, gone
}

// Files is where a server keeps its tokens, read and written.
type Files struct {
	Cluster, Agent *token.File
	// Write replaces a token file atomically (0600).
	Write func(path string, data []byte) error
}

// Server is one server's side: take rotations, report, and clean up a finished one.
type Server struct {
	Name  string
	KV    KV
	Files Files
	Now   func() time.Time

	reported Report
}

// ErrNotSealedForUs means a rotation record this server cannot open: it was sealed with a
// cluster token this server never held (rotated twice while it was down).
var ErrNotSealedForUs = errors.New("token rotation sealed with a token this server does not hold")

// Step takes a rotation this server is not on yet (the agent token's first: it is sealed with
// the cluster token, which a cluster rotation may replace next) and reports the tokens it runs
// on, whatever failed. changed says this server's tokens changed (the caller stores the
// bootstrap data again).
func (s *Server) Step(ctx context.Context) (changed bool, err error) {
	cluster, err := s.Files.Cluster.Current()
	if err != nil {
		return false, err
	}
	agent, err := s.Files.Agent.Current()
	if err != nil {
		return false, err
	}
	var errs []error
	for _, k := range []Kind{Agent, Cluster} {
		mine, f := agent, s.Files.Agent
		if k == Cluster {
			mine, f = cluster, s.Files.Cluster
		}
		next, err := s.take(ctx, k, cluster, mine, []token.Token{cluster, agent})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if next == nil {
			continue
		}
		next.CAHash = mine.CAHash
		if err := s.Files.Write(f.Path, []byte(next.String()+"\n")); err != nil {
			errs = append(errs, fmt.Errorf("write the rotated %s token: %w", k, err))
			continue
		}
		if k == Cluster {
			cluster = *next
		} else {
			agent = *next
		}
		changed = true
	}
	errs = append(errs, s.report(ctx, cluster.ID, agent.ID))
	return changed, errors.Join(errs...)
}

// ErrMissed means this server missed a rotation: the record replaces a token it never held.
var ErrMissed = errors.New("this server missed a token rotation")

// take opens the rotation of kind when this server is not on its token yet.
func (s *Server) take(ctx context.Context, k Kind, cluster, mine token.Token, inUse []token.Token) (*token.Token, error) {
	r, err := Pending(ctx, s.KV, k)
	if err != nil || r == nil || r.To == mine.ID {
		return nil, err
	}
	if r.Sealer != cluster.ID {
		return nil, fmt.Errorf("%w (%s token rotation, sealed with token %s, this server holds %s): copy DATA/server/token and agent-token from a server that runs on the current ones",
			ErrNotSealedForUs, k, r.Sealer, cluster.ID)
	}
	plain, err := bootstrap.OpenBytes(r.Sealed, cluster, rotationKey(k))
	if err != nil {
		return nil, fmt.Errorf("%s token rotation: %w", k, err)
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("%s token rotation: %w", k, err)
	}
	if p.From != mine.ID {
		return nil, fmt.Errorf("%w: the %s token rotation to %s replaces token %s, this server holds %s: copy DATA/server/%s from a server that runs on the current one",
			ErrMissed, k, r.To, p.From, mine.ID, map[Kind]string{Cluster: "token", Agent: "agent-token"}[k])
	}
	next, err := token.Parse(p.Token)
	if err != nil || next.ID != r.To {
		return nil, fmt.Errorf("%s token rotation holds no token named %s", k, r.To)
	}
	if err := distinct(next, inUse...); err != nil {
		return nil, fmt.Errorf("%s token rotation: %w", k, err)
	}
	return &next, nil
}

// report stores this server's token IDs when they changed, or a minute after the last time.
func (s *Server) report(ctx context.Context, clusterID, agentID string) error {
	now := s.Now()
	if s.reported.Token == clusterID && s.reported.AgentToken == agentID && now.Sub(s.reported.Seen) < heartbeat {
		return nil
	}
	r := Report{Token: clusterID, AgentToken: agentID, Seen: now.UTC()}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.KV.Set(ctx, serversPrefix+s.Name, b); err != nil {
		return fmt.Errorf("report this server's tokens: %w", err)
	}
	s.reported = r
	return nil
}

// Finish marks the rotation of kind done once every running server is on its token, and,
// for the cluster token, removes every bootstrap entry but the current token's (keep: its
// datastore key, which must be stored first). It runs again after that, while entries of older
// tokens turn up (a server that was down stores its old one before it takes the new token).
// done says the rotation is done.
func Finish(ctx context.Context, kv KV, k Kind, keep string, now time.Time) (done bool, err error) {
	r, err := Pending(ctx, kv, k)
	if err != nil || r == nil {
		return false, err
	}
	var stale []string
	if k == Cluster {
		keys, err := kv.Keys(ctx, bootstrap.KeyPrefix)
		if err != nil {
			return false, err
		}
		for _, key := range keys {
			if key != keep {
				stale = append(stale, key)
			}
		}
		if r.Done && len(stale) == 0 {
			return true, nil
		}
	} else if r.Done {
		return true, nil
	}
	servers, err := Servers(ctx, kv)
	if err != nil {
		return false, err
	}
	if behind, _ := Behind(servers, k, r.To, now); len(behind) > 0 {
		return false, nil
	}
	if k == Cluster {
		if b, _, err := kv.Get(ctx, keep); err != nil || b == nil {
			return false, err // the current token's entry is not stored yet
		}
		for _, key := range stale {
			if err := kv.Delete(ctx, key); err != nil {
				return false, err
			}
		}
	}
	if r.Done {
		return true, nil
	}
	r.Done = true
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	if err := kv.Set(ctx, rotationKey(k), b); err != nil {
		return false, err
	}
	return true, nil
}
