package harness

import (
	"archive/tar"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is a real OCI registry (go-containerregistry's, in memory) in the test process,
// served over TLS with a certificate from a test CA, behind basic auth (which the registry
// package lacks).
type Registry struct {
	Addr     string // host:port
	CAFile   string // the test CA, for registries.yaml
	User     string
	Password string
	Pulls    atomic.Int64 // manifest requests (resolve or fetch) that passed auth
	pool     *x509.CertPool
}

// StartRegistry serves a registry on listen (host:0 for any port) until the test ends.
func StartRegistry(t testing.TB, listen, user, password string) *Registry {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	r := &Registry{Addr: ln.Addr().String(), User: user, Password: password}
	host, _, _ := net.SplitHostPort(r.Addr)
	cert := r.makeCerts(t, net.ParseIP(host))
	inner := registry.New()
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.User || p != r.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="outpost-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		// HEAD resolves a tag; a GET follows only for content the node lacks.
		if (req.Method == http.MethodGet || req.Method == http.MethodHead) && strings.Contains(req.URL.Path, "/manifests/") {
			r.Pulls.Add(1)
		}
		inner.ServeHTTP(w, req)
	})
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *Registry) makeCerts(t testing.TB, ip net.IP) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test registry CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "registry"},
		IPAddresses: []net.IP{ip}, DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	r.CAFile = filepath.Join(t.TempDir(), "registry-ca.crt")
	if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	r.pool = x509.NewCertPool()
	r.pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Push uploads the first image of an OCI layout tar (the project's test image) as repoTag
// (a reference without the registry host).
func (r *Registry) Push(t testing.TB, ociTar, repoTag string) {
	t.Helper()
	dir := t.TempDir()
	if err := untar(ociTar, dir); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("image index of %s: %v", ociTar, err)
	}
	orig, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := recompressed(orig)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Addr + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}}
	if err := remote.Write(ref, img, remote.WithTransport(tr),
		remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// PushArchive uploads every image of a docker-archive tar under each of its tags, less their
// registry host (registry.k8s.io/e2e-test-images/agnhost:2.55 → e2e-test-images/agnhost:2.55):
// the registry then stands in for theirs as a mirror.
func (r *Registry) PushArchive(t testing.TB, archive string) {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}}
	for _, d := range m {
		for _, rt := range d.RepoTags {
			tag, err := name.NewTag(rt)
			if err != nil {
				t.Fatalf("%s: tag %q: %v", archive, rt, err)
			}
			img, err := tarball.ImageFromPath(archive, &tag)
			if err != nil {
				t.Fatalf("%s: %v", archive, err)
			}
			ref, err := name.ParseReference(r.Addr + "/" + tag.RepositoryStr() + ":" + tag.TagStr())
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img, remote.WithTransport(tr),
				remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
		}
	}
}

// recompressed is the image with its layers gzipped anew (fastest level): the same files,
// but blobs a node that imported the test image lacks, so a pull downloads every layer.
func recompressed(img v1.Image) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs, cf.History = nil, nil
	out, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		nl, err := tarball.LayerFromOpener(l.Uncompressed, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return nil, err
		}
		if out, err = mutate.AppendLayers(out, nl); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}
