package datastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one etcd member as Outpost shows it.
type Member struct {
	ID       uint64
	Name     string // "" until the member first started
	PeerURLs []string
}

// Members lists the etcd cluster's members.
func Members(ctx context.Context, cli *clientv3.Client) ([]Member, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs})
	}
	return out, nil
}

// addMemberPatience bounds AddMember's retries below the joining server's 20 s per request.
const addMemberPatience = 12 * time.Second

// AddMember adds a member (a learner) named name at peerURL and returns the initial cluster it must start
// with. A member of the same name is removed first: a server that joins again with an empty
// data dir replaces its old self, whose state is gone (the caller has proven the name is the
// joiner's). So is one at the same peer address that never started (a join that failed
// halfway); one that did, under another name, is another server's and stays.
func AddMember(ctx context.Context, cli *clientv3.Client, name, peerURL string) (string, error) {
	ms, err := Members(ctx, cli)
	if err != nil {
		return "", err
	}
	if err := checkPeerURL(ms, name, peerURL); err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.Name == name || slices.Contains(m.PeerURLs, peerURL) {
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
				return "", fmt.Errorf("etcd: remove the old member %q (%s) before it joins again: %w", m.Name, strings.Join(m.PeerURLs, ","), err)
			}
		}
	}
	// As a learner: it does not count for the quorum until it caught up and promoted itself.
	// etcd refuses while the voting members have not all been connected for a few seconds
	// (a member just promoted): that passes, so it is retried, within the joiner's patience.
	deadline := time.Now().Add(addMemberPatience)
	resp, err := cli.MemberAddAsLearner(ctx, []string{peerURL})
	for errors.Is(err, rpctypes.ErrUnhealthy) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("etcd member add %s: %w", peerURL, err)
		case <-time.After(time.Second):
		}
		resp, err = cli.MemberAddAsLearner(ctx, []string{peerURL})
	}
	if err != nil {
		return "", fmt.Errorf("etcd member add %s: %w", peerURL, err)
	}
	var parts []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name
		}
		if n == "" { // another member that has not started yet: it names itself when it does
			continue
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ","), nil
}

// checkPeerURL refuses a peer URL a started member of another name holds.
func checkPeerURL(ms []Member, name, peerURL string) error {
	for _, m := range ms {
		if m.Name != "" && m.Name != name && slices.Contains(m.PeerURLs, peerURL) {
			return fmt.Errorf("%w: peer URL %s is member %q's: give the joining server its own --node-ip, or, if %s is gone for good, `outpost etcd member remove %s` first",
				ErrMemberConflict, peerURL, m.Name, m.Name, m.Name)
		}
	}
	return nil
}

// ErrMemberConflict is a member add that would replace another server's member.
var ErrMemberConflict = errors.New("etcd member conflict")

// RemoveMember removes the member named name; false when there is none. etcd refuses while
// the remaining members have not all been connected for a few seconds (the removal could
// break the quorum): that is retried until ctx ends.
func RemoveMember(ctx context.Context, cli *clientv3.Client, name string) (bool, error) {
	for {
		ms, err := Members(ctx, cli)
		if err != nil {
			return false, err
		}
		i := slices.IndexFunc(ms, func(m Member) bool { return m.Name == name })
		if i < 0 {
			return false, nil
		}
		_, err = cli.MemberRemove(ctx, ms[i].ID)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			return false, fmt.Errorf("etcd member remove %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("etcd member remove %s: %w (the other members are not all connected)", name, err)
		case <-time.After(time.Second):
		}
	}
}
