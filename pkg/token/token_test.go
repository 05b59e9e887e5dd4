package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

func ca(t *testing.T, cn string) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestGenerateParseRoundTrip(t *testing.T) {
	c := ca(t, "a")
	tok, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !strings.HasPrefix(s, "OP10") || len(s) != 4+64+2+6+1+16 {
		t.Fatalf("token %q", s)
	}
	back, err := Parse(s + "\n")
	if err != nil || back != tok {
		t.Fatalf("parse %v %v", back, err)
	}
	if h, err := CAHash(c); err != nil || back.CAHash != h {
		t.Errorf("pin %s, CA hashes to %s (%v)", back.CAHash, h, err)
	}
	if h, _ := CAHash(ca(t, "b")); back.CAHash == h {
		t.Error("another CA hashes to the pin")
	}
	short, err := Parse(tok.ID + "." + tok.Secret)
	if err != nil || short.CAHash != "" || !tok.Matches(short) {
		t.Errorf("short form %v %v", short, err)
	}
	if tok.Matches(Token{ID: tok.ID, Secret: strings.Repeat("x", 16)}) {
		t.Error("wrong secret matched")
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "abc", "OP10zz::abcdef.0123456789abcdef", "OP10" + strings.Repeat("a", 64) + "::ABCDEF.0123456789abcdef",
		"abcdef.short", "abcdef0123456789abcdef"} {
		if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v", s, err)
		}
	}
}

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/token"
	c := ca(t, "a")
	write := func(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }
	first, err := Ensure(p, c, nil, write)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	again, err := Ensure(p, c, nil, write)
	if err != nil || again != first {
		t.Errorf("second start: %v %v", again, err)
	}
	if _, err := Ensure(p, c, must(first.ID+"."+first.Secret), write); err != nil {
		t.Errorf("same token given: %v", err)
	}
	if _, err := Ensure(p, c, must("abcdef.0123456789abcdef"), write); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("other token given: %v", err)
	}
	other, _ := Generate(ca(t, "b"))
	if _, err := Ensure(dir+"/t2", c, must(other.String()), write); err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("token of another CA: %v", err)
	}
	given, err := Ensure(dir+"/t3", c, must("abcdef.0123456789abcdef"), write)
	if h, _ := CAHash(c); err != nil || given.ID != "abcdef" || given.CAHash != h {
		t.Errorf("given token: %v %v", given, err)
	}
}

// must parses a token the test knows to be valid.
func must(s string) *Token {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return &t
}
