package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// The agent token joins agents and nothing else: unlike the cluster (server) token it opens
// neither the bootstrap data (every CA key) nor an etcd membership, so root on an agent
// machine, where it is kept, is not root on the cluster.

// EnsureAgent returns the agent token stored at path, creating it (mode 0600) on first start:
// given (--agent-token) when set, else one derived from the cluster token. Derived, not
// random: servers of a cluster that predates the agent token each make the same one, with
// nothing to agree on; and the derivation is one-way, so it tells nothing of the cluster token.
func EnsureAgent(path string, caPEM []byte, given *Token, cluster Token, write func(path string, data []byte) error) (Token, error) {
	return ensure(path, caPEM, given, "--agent-token", func() (Token, error) { return DeriveAgent(cluster) }, write)
}

// DeriveAgent is the default agent token of the cluster token t: HMAC-SHA256 keyed with its
// secret, drawn into the token alphabet without modulo bias.
func DeriveAgent(t Token) (Token, error) {
	if t.Secret == "" {
		return Token{}, fmt.Errorf("no cluster token to derive the agent token from")
	}
	draw := stream([]byte(t.ID+"."+t.Secret), "outpost-agent-token")
	id, secret := draw(6), draw(16)
	if id == t.ID { // 36^-6: never in practice, but the two must be told apart by ID
		id = draw(6)
	}
	return Token{CAHash: t.CAHash, ID: id, Secret: secret}, nil
}

// stream draws characters of alphabet from HMAC(key, label || counter) blocks.
func stream(key []byte, label string) func(n int) string {
	var block []byte
	var counter uint64
	return func(n int) string {
		out := make([]byte, 0, n)
		for len(out) < n {
			if len(block) == 0 {
				m := hmac.New(sha256.New, key)
				m.Write([]byte(label))
				m.Write(binary.BigEndian.AppendUint64(nil, counter))
				block, counter = m.Sum(nil), counter+1
			}
			c := block[0]
			block = block[1:]
			if int(c) < 252 { // 252 = 7*36
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
		return string(out)
	}
}
