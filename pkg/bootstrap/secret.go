package bootstrap

import (
	"crypto/rand"
	"encoding/json"

	"github.com/outpostk8s/outpost/pkg/token"
)

// SealBytes encrypts plain with a key derived from t (AES-256-GCM, PBKDF2-SHA256); label (the
// datastore key it is stored under) is the additional data. The bootstrap data is sealed so
// (SealAs), and a rotated token travels to the other servers so, sealed with the token they
// still hold.
func SealBytes(plain []byte, t token.Token, label string) ([]byte, error) {
	s := sealed{Version: 1, Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return nil, err
	}
	g, err := aead(t, s.Salt)
	if err != nil {
		return nil, err
	}
	s.Nonce = make([]byte, g.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return nil, err
	}
	s.Data = g.Seal(nil, s.Nonce, plain, []byte(label))
	return json.Marshal(s)
}

// OpenBytes decrypts what SealBytes made with t for label.
func OpenBytes(b []byte, t token.Token, label string) ([]byte, error) {
	s, g, err := unseal(b, t)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, s.Nonce, s.Data, []byte(label))
	if err != nil {
		return nil, ErrWrongToken
	}
	return plain, nil
}
