package token

import (
	"context"
	"fmt"
	"os"
)

// File is the cluster token as stored on the server, read at every use (a hundred bytes, at
// a join), so that `outpost token rotate` takes effect in a running server at once.
type File struct {
	Path string
}

// Current returns the token in the file.
func (f *File) Current() (Token, error) {
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		return Token{}, fmt.Errorf("cluster token: %w", err)
	}
	t, err := Parse(string(raw))
	if err != nil {
		return Token{}, fmt.Errorf("cluster token %s: %w", f.Path, err)
	}
	return t, nil
}

// New is a token pinned to caPEM: given (flag names it in errors) when set, else a random one.
func New(caPEM []byte, given, flag string) (Token, error) {
	hash, err := CAHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	if given == "" {
		return Generate(caPEM)
	}
	t, err := Parse(given)
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", flag, err)
	}
	if t.CAHash != "" && t.CAHash != hash {
		return Token{}, fmt.Errorf("%s pins another CA than this server's: it belongs to another cluster", flag)
	}
	t.CAHash = hash
	return t, nil
}

// Checker checks a presented token against stored ones (Store does).
type Checker interface {
	Check(ctx context.Context, presented Token) error
}

// CheckAny accepts presented when it is the token in one of files (read now, so a rotation
// applies at once), else when extra accepts it: how the join API takes the agent token, the
// cluster token and the tokens of `outpost token create` alike.
func CheckAny(ctx context.Context, presented Token, files []*File, extra Checker) error {
	for _, f := range files {
		known, err := f.Current()
		if err != nil {
			return err
		}
		if known.Matches(presented) {
			return nil
		}
	}
	return extra.Check(ctx, presented)
}
