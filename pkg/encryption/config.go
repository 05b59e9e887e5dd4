// Package encryption keeps the apiserver's encryption-at-rest configuration for Secrets: a
// key made on first start, rotation to a new key, and re-encryption of every Secret.
package encryption

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Providers are the ciphers Outpost configures; secretbox (XSalsa20-Poly1305) first, the
// default, since aescbc is open to padding-oracle attacks.
func Providers() []string { return []string{"secretbox", "aescbc"} }

// Key is one named key.
type Key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"` // base64 of 32 random bytes
}

type keys struct {
	Keys []Key `json:"keys"`
}

type provider struct {
	AESCBC    *keys     `json:"aescbc,omitempty"`
	Secretbox *keys     `json:"secretbox,omitempty"`
	Identity  *struct{} `json:"identity,omitempty"`
}

type resource struct {
	Resources []string   `json:"resources"`
	Providers []provider `json:"providers"`
}

// File is the EncryptionConfiguration the apiserver reads (JSON is YAML).
type File struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Resources  []resource `json:"resources"`
}

// Config is what Outpost keeps in the file: one cipher, its keys (the first one encrypts,
// every one decrypts), then identity so Secrets written before encryption was on still read.
type Config struct {
	Provider string
	Keys     []Key
}

func (c Config) file() File {
	p := provider{}
	k := &keys{Keys: c.Keys}
	if c.Provider == "secretbox" {
		p.Secretbox = k
	} else {
		p.AESCBC = k
	}
	return File{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration",
		Resources: []resource{{Resources: []string{"secrets"}, Providers: []provider{p, {Identity: &struct{}{}}}}}}
}

// Marshal is the file's content.
func (c Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c.file(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Hash is how the apiserver names a loaded configuration in its
// apiserver_encryption_config_controller_last_config_info metric.
func Hash(content []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(content)) }

// Read loads the file at path.
func Read(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(raw)
}

// Parse reads a file Outpost wrote.
func Parse(raw []byte) (Config, error) {
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return Config{}, fmt.Errorf("encryption config: %w", err)
	}
	if len(f.Resources) != 1 || len(f.Resources[0].Providers) == 0 {
		return Config{}, errors.New("encryption config: not one written by Outpost (want one resource entry)")
	}
	p := f.Resources[0].Providers[0]
	switch {
	case p.AESCBC != nil && len(p.AESCBC.Keys) > 0:
		return Config{Provider: "aescbc", Keys: p.AESCBC.Keys}, nil
	case p.Secretbox != nil && len(p.Secretbox.Keys) > 0:
		return Config{Provider: "secretbox", Keys: p.Secretbox.Keys}, nil
	}
	return Config{}, errors.New("encryption config: its first provider is neither aescbc nor secretbox with a key")
}

// NewKey makes a random 32-byte key named after now.
func NewKey(now time.Time) (Key, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("encryption key: %w", err)
	}
	return Key{Name: "outpost-" + now.UTC().Format("20060102T150405Z"), Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// Ensure returns the configuration at path, creating it with one new key of provider when it
// does not exist (created is then true). An existing file keeps its provider: Secrets already
// encrypted need it.
func Ensure(path, provider string, now time.Time, write func(path string, data []byte) error) (cfg Config, created bool, err error) {
	if cfg, err := Read(path); err == nil {
		return cfg, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Config{}, false, fmt.Errorf("%s: %w (restore it from a backup: without it encrypted Secrets cannot be read)", path, err)
	}
	if !slices.Contains(Providers(), provider) {
		return Config{}, false, fmt.Errorf("secrets encryption provider %q: want secretbox or aescbc", provider)
	}
	k, err := NewKey(now)
	if err != nil {
		return Config{}, false, err
	}
	cfg = Config{Provider: provider, Keys: []Key{k}}
	b, err := cfg.Marshal()
	if err != nil {
		return Config{}, false, err
	}
	if err := write(path, b); err != nil {
		return Config{}, false, err
	}
	return cfg, true, nil
}

// Rotated is cfg with a new key in front: new writes use it, the old ones still decrypt.
func (c Config) Rotated(now time.Time) (Config, error) {
	k, err := NewKey(now)
	if err != nil {
		return Config{}, err
	}
	if slices.ContainsFunc(c.Keys, func(o Key) bool { return o.Name == k.Name }) {
		k.Name += fmt.Sprintf("-%d", now.UnixNano()%1e6)
	}
	return Config{Provider: c.Provider, Keys: append([]Key{k}, c.Keys...)}, nil
}

// Pruned keeps only the active key: for after every Secret was re-encrypted with it.
func (c Config) Pruned() Config { return Config{Provider: c.Provider, Keys: c.Keys[:1]} }

// Prefix is how a value encrypted with key k starts in the datastore.
func (c Config) Prefix(k Key) string { return "k8s:enc:" + c.Provider + ":v1:" + k.Name + ":" }
