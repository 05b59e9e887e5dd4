package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpostk8s/outpost/pkg/cluster"
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
	Settings cluster.Settings
	CAPEM    []byte
	Node     Node // who joined; the renewer renews as this node
	Renewed  bool // by the node's own credentials, not a token
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

// newRequest makes the node's keys and the request carrying their CSRs.
func newRequest(n Node) (Request, map[string]*ecdsa.PrivateKey, error) {
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
		var err error
		if *x.out, err = csr(x.name, x.cn, x.org); err != nil {
			return req, nil, fmt.Errorf("key for %s: %w", x.name, err)
		}
	}
	return req, keys, nil
}

// Fetch joins with the token, keeping the keys and certificates in memory: a refused join
// writes nothing.
func (c Client) Fetch(ctx context.Context, n Node) (*Result, error) {
	server, caPEM, err := c.FetchCA(ctx)
	if err != nil {
		return nil, err
	}
	req, keys, err := newRequest(n)
	if err != nil {
		return nil, err
	}
	resp, err := c.Join(ctx, server, caPEM, req)
	if err != nil {
		return nil, err
	}
	return &Result{Server: server, Settings: resp.Settings, CAPEM: caPEM, Node: n, resp: resp, keys: keys}, nil
}

// Renew asks for new certificates with the credentials of an earlier join (st, read from dir
// by Stored): the node's client certificate and password, no token. It tries the server of
// that join first, then c.Servers; the result trusts the same CA. Nothing is written.
func (c Client) Renew(ctx context.Context, st *Result, dir string, n Node) (*Result, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, KubeletClient+".crt"), filepath.Join(dir, KubeletClient+".key"))
	if err != nil {
		return nil, fmt.Errorf("stored credentials: %w", err)
	}
	req, keys, err := newRequest(n)
	if err != nil {
		return nil, err
	}
	servers := append([]string{st.Server}, c.Servers...)
	var errs []error
	for i, s := range servers {
		if i > 0 && s == st.Server {
			continue
		}
		resp, err := c.RenewWith(ctx, s, st.CAPEM, cert, req)
		if err == nil {
			return &Result{Server: s, Settings: resp.Settings, CAPEM: st.CAPEM, Node: n, Renewed: true, resp: resp, keys: keys}, nil
		}
		if !errors.Is(err, ErrUnreachable) {
			return nil, err // a server answered no: another one would say the same
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Write stores the credentials in dir (a fresh dir that replaces the old one at the end) and
// the settings beside them, for Stored. A stored result has nothing new to write.
func (r *Result) Write(dir string) error {
	if r.resp == nil {
		return nil
	}
	b, err := json.Marshal(stored{Server: r.Server, Settings: r.Settings})
	if err != nil {
		return err
	}
	return writeDir(dir, r.CAPEM, r.resp, r.keys, b)
}

// Lifetime of the node's certificates: from the answer, or, for a stored join, from dir.
func (r *Result) Lifetime(dir string) time.Duration {
	raw := []byte(nil)
	if r.resp != nil {
		raw = []byte(r.resp.KubeletCert)
	} else if b, err := os.ReadFile(filepath.Join(dir, KubeletClient+".crt")); err == nil {
		raw = b
	}
	c, err := pki.ParseCert(raw)
	if err != nil {
		return 0
	}
	return c.NotAfter.Sub(c.NotBefore)
}

// Warnings are what the server asked this node to log.
func (r *Result) Warnings() []string {
	if r.resp == nil {
		return nil
	}
	return r.resp.Warnings
}

// FromStore reports whether r is a stored join rather than a fresh one.
func (r *Result) FromStore() bool { return r.resp == nil }

type stored struct {
	Server   string           `json:"server"`
	Settings cluster.Settings `json:"settings"`
}

// Stored is the last successful join kept in dir, for an agent that restarts while no server
// answers: its node keeps running on the credentials it has.
func Stored(dir string) (*Result, error) {
	// A crash between writeDir's two renames leaves the previous credentials in dir.old.
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(dir+".old", dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("restore credentials: %w", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "join.json"))
	if err != nil {
		return nil, err
	}
	var st stored
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "join.json"), err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, pki.ServerCA+".crt"))
	if err != nil {
		return nil, err
	}
	for _, f := range []string{KubeletClient, KubeletServing, ProxyClient} {
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, f+".crt"), filepath.Join(dir, f+".key")); err != nil {
			return nil, fmt.Errorf("stored credentials: %w", err)
		}
	}
	return &Result{Server: st.Server, Settings: st.Settings, CAPEM: ca}, nil
}

// writeDir writes the pinned CA (never the CA the answer names) and the answer's certificates.
func writeDir(dir string, caPEM []byte, resp *Response, keys map[string]*ecdsa.PrivateKey, joinJSON []byte) error {
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("credentials dir: %w", err)
	}
	files := map[string]string{
		pki.ServerCA + ".crt": string(caPEM), pki.ClientCA + ".crt": resp.ClientCA,
		KubeletClient + ".crt": resp.KubeletCert, KubeletServing + ".crt": resp.ServingCert, ProxyClient + ".crt": resp.ProxyCert,
		"join.json": string(joinJSON), // inside the swap: credentials and settings change together
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
		if strings.HasSuffix(name, ".key") || name == "join.json" {
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
