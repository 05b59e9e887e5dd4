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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/outpostk8s/outpost/pkg/cluster"
	"github.com/outpostk8s/outpost/pkg/token"
)

// AgentTokenFile is the agent token's path in the data, relative to DATA/server.
const AgentTokenFile = "agent-token"

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
		EncryptionConfigFile,
		AgentTokenFile, // every server joins agents with the same one
	}
}

// Required are those a cluster always has (the encryption config only with
// --secrets-encryption, the etcd CA only with embedded etcd, the agent token only since
// servers make one).
func required(name string) bool {
	return strings.HasPrefix(name, "tls/") && !strings.HasPrefix(name, "tls/etcd/")
}

// Data is the bootstrap files' content by relative path, and the cluster-wide settings.
type Data struct {
	Files map[string][]byte `json:"files"`
	// Settings are the cluster's (those of the server that stored the data): a joining server
	// must have the same. nil in data an older version stored.
	Settings *cluster.Settings `json:"settings,omitempty"`
}

// Check refuses a server joining this cluster whose settings differ: the cluster-wide
// values, and Secrets encryption (on where the cluster's data holds its config). Data from
// an older version carries no settings; only the encryption is checked then.
func (d *Data) Check(own cluster.Settings, secretsEncryption bool) error {
	if d.Settings != nil {
		if err := own.Mismatch(*d.Settings); err != nil {
			return err
		}
	}
	_, clusterEncrypts := d.Files[EncryptionConfigFile]
	if secretsEncryption != clusterEncrypts {
		return fmt.Errorf("critical configuration value mismatch: --secrets-encryption is %t here and %t in the cluster: start this server with the cluster's value", secretsEncryption, clusterEncrypts)
	}
	return nil
}

// EncryptionConfigFile is the Secrets encryption config's path in the data, relative to
// DATA/server: present when the cluster encrypts Secrets.
const EncryptionConfigFile = "cred/encryption-config.json"

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

// Equal reports whether two sets hold the same files and bytes, and the same settings.
func (d *Data) Equal(o *Data) bool {
	if o == nil || len(d.Files) != len(o.Files) || (d.Settings == nil) != (o.Settings == nil) {
		return false
	}
	if d.Settings != nil {
		a, errA := json.Marshal(d.Settings)
		b, errB := json.Marshal(o.Settings)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			return false
		}
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

// keySalt separates the key name's PBKDF2 from the sealing key's (which has a random salt).
// It is fixed because the name must follow from the token alone.
const keySalt = "outpost-bootstrap-key"

// Key is the datastore key of the data sealed with t, a rotated token getting a new one. The
// name is readable by whoever reads the datastore or a snapshot, so it costs a guesser as
// much as the sealing key does: PBKDF2, not one hash per guessed token.
func Key(t token.Token) string {
	// 16 bytes: FIPS 140-only mode refuses shorter PBKDF2 output, the only way this fails.
	k, err := pbkdf2.Key(sha256.New, t.ID+"."+t.Secret, []byte(keySalt), iterations, 16)
	if err != nil {
		panic(fmt.Sprintf("bootstrap key name: %v", err))
	}
	return KeyPrefix + hex.EncodeToString(k)
}

// LegacyKey is where versions before Key's PBKDF2 stored the data (and what they sealed it
// for): still looked up and opened, never written.
func LegacyKey(t token.Token) string {
	h := sha256.Sum256([]byte("outpost-bootstrap-key:" + t.ID + "." + t.Secret))
	return KeyPrefix + hex.EncodeToString(h[:12])
}

// Find reads the data sealed with t through get (a datastore's or a snapshot's): under
// Key(t), else under LegacyKey(t). key is the name it was found under, for OpenAs; "" when
// neither holds it.
func Find(t token.Token, get func(key string) ([]byte, bool, error)) (blob []byte, key string, err error) {
	for _, k := range []string{Key(t), LegacyKey(t)} {
		b, ok, err := get(k)
		if err != nil {
			return nil, "", err
		}
		if ok && b != nil {
			return b, k, nil
		}
	}
	return nil, "", nil
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

// Seal encrypts d with a key derived from t (AES-256-GCM), for storing under Key(t).
func Seal(d *Data, t token.Token) ([]byte, error) {
	return SealAs(d, t, Key(t))
}

// SealAs is Seal for a caller that has Key(t) already (each costs a PBKDF2). The key name is
// the additional data, so a sealed value cannot be moved under another key.
func SealAs(d *Data, t token.Token, key string) ([]byte, error) {
	plain, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return SealBytes(plain, t, key)
}

// ErrWrongToken is returned when the data was sealed with another token.
var ErrWrongToken = errors.New("the bootstrap data was sealed with another token: give the cluster's token (--token)")

// Open decrypts what Seal made with the same token, or what an older version sealed for
// LegacyKey(t) (a joining server gets it from a server, without a key name).
func Open(b []byte, t token.Token) (*Data, error) {
	s, g, err := unseal(b, t)
	if err != nil {
		return nil, err
	}
	// The legacy name is one hash: tried first, so Key's PBKDF2 runs only when it fails.
	plain, err := g.Open(nil, s.Nonce, s.Data, []byte(LegacyKey(t)))
	if err != nil {
		plain, err = g.Open(nil, s.Nonce, s.Data, []byte(Key(t)))
	}
	if err != nil {
		return nil, ErrWrongToken
	}
	return decode(plain)
}

// OpenAs is Open for data read from the datastore key named key (from Find), which it
// was sealed for.
func OpenAs(b []byte, t token.Token, key string) (*Data, error) {
	plain, err := OpenBytes(b, t, key)
	if err != nil {
		return nil, err
	}
	return decode(plain)
}

// unseal parses the stored form and derives its AEAD from t.
func unseal(b []byte, t token.Token) (*sealed, cipher.AEAD, error) {
	var s sealed
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return nil, nil, errors.New("bootstrap data: not in a format this version reads")
	}
	g, err := aead(t, s.Salt)
	if err != nil {
		return nil, nil, err
	}
	if len(s.Nonce) != g.NonceSize() {
		return nil, nil, errors.New("bootstrap data: damaged")
	}
	return &s, g, nil
}

// decode checks the opened data names bootstrap files only, and all required ones.
func decode(plain []byte) (*Data, error) {
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
