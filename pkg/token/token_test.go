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
	if err := back.VerifyCA(c); err != nil {
		t.Error(err)
	}
	if err := back.VerifyCA(ca(t, "b")); !errors.Is(err, ErrPinMismatch) {
		t.Errorf("other CA: %v", err)
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
