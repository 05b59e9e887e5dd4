// Package bootstrap is what every server of a cluster shares and a restore must bring back:
// the CAs with their keys, the service-account key and the Secrets encryption config. The
// server keeps it in the datastore (so a snapshot holds it), sealed with a key derived from
// the cluster token, as k3s does: whoever has the datastore or a snapshot but not the token
// learns nothing from it.
package bootstrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/token"
)

// KeyPrefix is where sealed bootstrap data lives in the datastore, one key per token.
const KeyPrefix = "/outpost/bootstrap/"

// files are the shared files, by path relative to DATA/server. Leaf certificates are not
// among them: each server issues its own from the CAs.
func files() []string {
	return []string{
		"tls/server-ca.crt", "tls/server-ca.key",
		"tls/client-ca.crt", "tls/client-ca.key",
		"tls/request-header-ca.crt", "tls/request-header-ca.key",
		"tls/kubelet-serving-ca.crt", "tls/kubelet-serving-ca.key",
		"tls/service.key",
		"tls/etcd/ca.crt", "tls/etcd/ca.key",
		"cred/encryption-config.json",
	}
}

// Required are those a cluster always has (the encryption config only with
// --secrets-encryption, the etcd CA only with embedded etcd).
func required(name string) bool {
	return strings.HasPrefix(name, "tls/") && !strings.HasPrefix(name, "tls/etcd/")
}

// Data is the bootstrap files' content by relative path.
type Data struct {
	Files map[string][]byte `json:"files"`
}

// Collect reads the files under serverDir (DATA/server).
func Collect(serverDir string) (*Data, error) {
	d := &Data{Files: map[string][]byte{}}
	for _, name := range files() {
		b, err := os.ReadFile(filepath.Join(serverDir, name))
		if errors.Is(err, os.ErrNotExist) && !required(name) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bootstrap data: %w", err)
		}
		d.Files[name] = b
	}
	return d, nil
}

// Names lists the files held, sorted.
func (d *Data) Names() []string {
	out := make([]string, 0, len(d.Files))
	for n := range d.Files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Equal reports whether two sets hold the same files and bytes.
func (d *Data) Equal(o *Data) bool {
	if o == nil || len(d.Files) != len(o.Files) {
		return false
	}
	for n, b := range d.Files {
		if !bytes.Equal(b, o.Files[n]) {
			return false
		}
	}
	return true
}

// Write puts the files under serverDir with write, which must replace each atomically
// (keys and configs 0600, certificates 0644). A file not in d is left alone.
func (d *Data) Write(serverDir string, write func(path string, b []byte, mode os.FileMode) error) error {
	for _, name := range d.Names() {
		if !valid(name) {
			return fmt.Errorf("bootstrap data names %q, not a bootstrap file", name)
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".crt") {
			mode = 0o644
		}
		if err := write(filepath.Join(serverDir, name), d.Files[name], mode); err != nil {
			return fmt.Errorf("bootstrap data: %w", err)
		}
	}
	return nil
}

func valid(name string) bool {
	for _, f := range files() {
		if f == name {
			return true
		}
	}
	return false
}

// Key is the datastore key of the data sealed with t: named by a hash of the token's
// secret part, so the key reveals nothing and a rotated token gets a new one.
func Key(t token.Token) string {
	h := sha256.Sum256([]byte("outpost-bootstrap-key:" + t.ID + "." + t.Secret))
	return KeyPrefix + hex.EncodeToString(h[:12])
}

// sealed is the stored form.
type sealed struct {
	Version int    `json:"v"`
	Salt    []byte `json:"salt"`
	Nonce   []byte `json:"nonce"`
	Data    []byte `json:"data"`
}

// iterations of PBKDF2-SHA256: about 0.1 s here, once per start or join.
const iterations = 200_000

func aead(t token.Token, salt []byte) (cipher.AEAD, error) {
	if t.Secret == "" {
		return nil, errors.New("bootstrap data: no token to seal it with")
	}
	key, err := pbkdf2.Key(sha256.New, t.ID+"."+t.Secret, salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts d with a key derived from t (AES-256-GCM; the datastore key is the
// additional data, so a sealed value cannot be moved under another key).
func Seal(d *Data, t token.Token) ([]byte, error) {
	plain, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
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
	s.Data = g.Seal(nil, s.Nonce, plain, []byte(Key(t)))
	return json.Marshal(s)
}

// ErrWrongToken is returned when the data was sealed with another token.
var ErrWrongToken = errors.New("the bootstrap data was sealed with another token: give the cluster's token (--token)")

// Open decrypts what Seal made with the same token.
func Open(b []byte, t token.Token) (*Data, error) {
	var s sealed
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return nil, errors.New("bootstrap data: not in a format this version reads")
	}
	g, err := aead(t, s.Salt)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != g.NonceSize() {
		return nil, errors.New("bootstrap data: damaged")
	}
	plain, err := g.Open(nil, s.Nonce, s.Data, []byte(Key(t)))
	if err != nil {
		return nil, ErrWrongToken
	}
	var d Data
	if err := json.Unmarshal(plain, &d); err != nil {
		return nil, fmt.Errorf("bootstrap data: %w", err)
	}
	for _, n := range d.Names() {
		if !valid(n) {
			return nil, fmt.Errorf("bootstrap data names %q, not a bootstrap file", n)
		}
	}
	for _, n := range files() {
		if _, ok := d.Files[n]; required(n) && !ok {
			return nil, fmt.Errorf("bootstrap data lacks %s", n)
		}
	}
	return &d, nil
}
