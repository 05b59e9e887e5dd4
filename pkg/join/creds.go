package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpostk8s/outpost/pkg/pki"
)

// Files an agent keeps in its TLS dir (names shared with the server's own node).
var (
	KubeletClient  = pki.Kubelet
	KubeletServing = pki.KubeletServing
	ProxyClient    = pki.KubeProxy
)

// NodePassword reads the machine's node password, or makes a new one (fresh=true) that the
// caller stores with SaveNodePassword once a join succeeded. It lives outside the data dir so
// that re-installing the agent keeps the machine's node name.
func NodePassword(path string) (pw string, fresh bool, err error) {
	if b, err := os.ReadFile(path); err == nil {
		if pw := strings.TrimSpace(string(b)); len(pw) >= 16 {
			return pw, false, nil
		}
		return "", false, fmt.Errorf("node password file %s is too short: remove it to make a new one", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("node password: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(raw), true, nil
}

// SaveNodePassword stores the password (0600).
func SaveNodePassword(path, pw string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("node password dir: %w", err)
	}
	return pki.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// Node is what the agent joins as.
type Node struct {
	Name     string
	IP       string
	Password string
}

// Result is a completed join, held in memory until Write.
type Result struct {
	Server   string
	Settings Settings
	CAPEM    []byte
	resp     *Response
	keys     map[string]*ecdsa.PrivateKey
}

// Run joins and writes the credentials into tlsDir (see Fetch and Write).
func (c Client) Run(ctx context.Context, n Node, tlsDir string) (*Result, error) {
	r, err := c.Fetch(ctx, n)
	if err != nil {
		return nil, err
	}
	return r, r.Write(tlsDir)
}

// Fetch joins, keeping the keys and certificates in memory: a refused join writes nothing.
func (c Client) Fetch(ctx context.Context, n Node) (*Result, error) {
	server, caPEM, err := c.FetchCA(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[string]*ecdsa.PrivateKey{}
	csr := func(name, cn string, org []string) (string, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", err
		}
		keys[name] = k
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: org}}, k)
		if err != nil {
			return "", err
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
	}
	req := Request{NodeName: n.Name, NodeIP: n.IP, NodePassword: n.Password}
	user := "system:node:" + n.Name
	for _, x := range []struct {
		out      *string
		name, cn string
		org      []string
	}{
		{&req.KubeletCSR, KubeletClient, user, []string{"system:nodes"}},
		{&req.ServingCSR, KubeletServing, user, []string{"system:nodes"}},
		{&req.ProxyCSR, ProxyClient, "system:kube-proxy", nil},
	} {
		if *x.out, err = csr(x.name, x.cn, x.org); err != nil {
			return nil, fmt.Errorf("key for %s: %w", x.name, err)
		}
	}
	resp, err := c.Join(ctx, server, caPEM, req)
	if err != nil {
		return nil, err
	}
	return &Result{Server: server, Settings: resp.Settings, CAPEM: caPEM, resp: resp, keys: keys}, nil
}

// Write stores the credentials in dir: a fresh dir that replaces the old one at the end.
func (r *Result) Write(dir string) error { return writeDir(dir, r.resp, r.keys) }

func writeDir(dir string, resp *Response, keys map[string]*ecdsa.PrivateKey) error {
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("credentials dir: %w", err)
	}
	files := map[string]string{
		pki.ServerCA + ".crt": resp.ServerCA, pki.ClientCA + ".crt": resp.ClientCA,
		KubeletClient + ".crt": resp.KubeletCert, KubeletServing + ".crt": resp.ServingCert, ProxyClient + ".crt": resp.ProxyCert,
	}
	for name, k := range keys {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return err
		}
		files[name+".key"] = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	}
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := pki.WriteFile(filepath.Join(tmp, name), []byte(body), mode); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	old := dir + ".old"
	os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(tmp)
		return fmt.Errorf("credentials: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return fmt.Errorf("credentials: %w", err)
	}
	return os.RemoveAll(old)
}
