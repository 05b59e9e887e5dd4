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

// NodePassword reads the machine's node password, creating it (0600) on first use. It lives
// outside the data dir so that re-installing the agent keeps the machine's node name.
func NodePassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if pw := strings.TrimSpace(string(b)); len(pw) >= 16 {
			return pw, nil
		}
		return "", fmt.Errorf("node password file %s is too short: remove it to make a new one", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node password: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("node password dir: %w", err)
	}
	if err := pki.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

// Node is what the agent joins as.
type Node struct {
	Name     string
	IP       string
	Password string
}

// Result is a completed join: the certificates are in TLSDir.
type Result struct {
	Server   string
	Settings Settings
}

// Run joins and writes the credentials into tlsDir. Nothing is written unless the server
// accepted the join: keys and certificates go to a fresh dir that replaces tlsDir at the end.
func (c Client) Run(ctx context.Context, n Node, tlsDir string) (*Result, error) {
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
	if err := writeDir(tlsDir, resp, keys); err != nil {
		return nil, err
	}
	return &Result{Server: server, Settings: resp.Settings}, nil
}

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
