// Package token is the cluster join token: a pin of the server CA and a secret,
//
//	OP10<sha256 of the CA certificate, hex>::<id>.<secret>
//
// An agent refuses a server whose CA does not hash to the pin, and proves itself with the
// secret. The short form <id>.<secret> carries no pin (the agent must then be given the CA
// another way).
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Prefix marks the format version.
const Prefix = "OP10"

// Token is a parsed join token.
type Token struct {
	CAHash string // hex sha256 of the CA certificate (DER); "" in the short form
	ID     string // 6 characters, [a-z0-9]: names the token without revealing it
	Secret string // 16 characters, [a-z0-9]
}

var (
	idRE     = regexp.MustCompile(`^[a-z0-9]{6}$`)
	secretRE = regexp.MustCompile(`^[a-z0-9]{16}$`)
	hashRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ErrMalformed is returned for a string that is not a token.
var ErrMalformed = errors.New("malformed token")

// Parse reads the full or the short form.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	var t Token
	rest := s
	if strings.HasPrefix(s, Prefix) {
		hash, cred, ok := strings.Cut(strings.TrimPrefix(s, Prefix), "::")
		if !ok || !hashRE.MatchString(hash) {
			return t, fmt.Errorf("%w: expected %s<64 hex digits>::<id>.<secret>", ErrMalformed, Prefix)
		}
		t.CAHash, rest = hash, cred
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || !idRE.MatchString(id) || !secretRE.MatchString(secret) {
		return Token{}, fmt.Errorf("%w: expected <6 characters a-z0-9>.<16 characters a-z0-9>, optionally after %s<ca-hash>:: (a pin)", ErrMalformed, Prefix)
	}
	t.ID, t.Secret = id, secret
	return t, nil
}

// String is the full form when the pin is known.
func (t Token) String() string {
	if t.CAHash == "" {
		return t.ID + "." + t.Secret
	}
	return Prefix + t.CAHash + "::" + t.ID + "." + t.Secret
}

// Generate makes a new token pinned to caPEM.
func Generate(caPEM []byte) (Token, error) {
	h, err := CAHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	id, err := random(6)
	if err != nil {
		return Token{}, err
	}
	secret, err := random(16)
	if err != nil {
		return Token{}, err
	}
	return Token{CAHash: h, ID: id, Secret: secret}, nil
}

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// random draws n characters uniformly (rejection sampling: no modulo bias).
func random(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		for _, c := range buf {
			if int(c) < 252 && len(out) < n { // 252 = 7*36
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// CAHash is the pin of a PEM CA certificate (the first certificate in it).
func CAHash(caPEM []byte) (string, error) {
	blk, _ := pem.Decode(caPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", errors.New("CA is not a PEM certificate")
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// ErrPinMismatch means the server presented a CA other than the one the token names.
var ErrPinMismatch = errors.New("server CA does not match the token's pin")

// Matches reports whether presented proves knowledge of t's secret, in constant time.
func (t Token) Matches(presented Token) bool {
	return subtle.ConstantTimeCompare([]byte(t.ID+"."+t.Secret), []byte(presented.ID+"."+presented.Secret)) == 1
}

// Ensure returns the cluster token stored at path, creating it (mode 0600) on first start.
// given, when set (--token or --token-file, parsed), becomes the cluster's; a pin in it must
// match caPEM. A stored token is never silently replaced by another.
func Ensure(path string, caPEM []byte, given *Token, write func(path string, data []byte) error) (Token, error) {
	return ensure(path, caPEM, given, "--token", func() (Token, error) { return Generate(caPEM) }, write)
}

// ensure is Ensure for the token a flag names; fresh makes one when none is stored or given.
func ensure(path string, caPEM []byte, given *Token, flag string, fresh func() (Token, error), write func(path string, data []byte) error) (Token, error) {
	hash, err := CAHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	var want Token
	if given != nil {
		want = *given
		if want.CAHash != "" && want.CAHash != hash {
			return Token{}, fmt.Errorf("%s pins another CA than this server's: it belongs to another cluster", flag)
		}
		want.CAHash = hash
	}
	if raw, err := os.ReadFile(path); err == nil {
		stored, err := Parse(string(raw))
		if err != nil {
			return Token{}, fmt.Errorf("token file %s: %w: remove it to make a new one", path, err)
		}
		stored.CAHash = hash
		if given != nil && !stored.Matches(want) {
			return Token{}, fmt.Errorf("%s differs from the cluster's in %s: nodes already joined with that one; remove the file to change it (or use `outpost token rotate`)", flag, path)
		}
		return stored, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	if given == nil {
		if want, err = fresh(); err != nil {
			return Token{}, err
		}
		want.CAHash = hash
	}
	if err := write(path, []byte(want.String()+"\n")); err != nil {
		return Token{}, fmt.Errorf("write token file: %w", err)
	}
	return want, nil
}
