package token

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts is a well-formed token that prints
// back to a string Parse reads as the same token.
func FuzzParse(f *testing.F) {
	hash := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{
		"OP10" + hash + "::abcdef.0123456789abcdef",
		" OP10" + hash + "::abc123.zzzzzzzzzzzzzzzz\n",
		"abcdef.0123456789abcdef",
		"", "OP10", "OP10::", "OP10" + hash + "::", "abcdef.", ".0123456789abcdef",
		"OP10" + hash + "::abcdef.0123456789abcdef.x", "OP10OP10" + hash + "::abcdef.0123456789abcdef",
		"ABCDEF.0123456789ABCDEF", "abcdef.0123456789abcdé", "\x00abcdef.0123456789abcdef",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if tok != (Token{}) {
				t.Errorf("Parse(%q) failed (%v) but returned %+v", s, err, tok)
			}
			return
		}
		if !idRE.MatchString(tok.ID) || !secretRE.MatchString(tok.Secret) || (tok.CAHash != "" && !hashRE.MatchString(tok.CAHash)) {
			t.Fatalf("Parse(%q) accepted a malformed token %+v", s, tok)
		}
		back, err := Parse(tok.String())
		if err != nil || back != tok {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v, %v", s, tok, tok.String(), back, err)
		}
	})
}
