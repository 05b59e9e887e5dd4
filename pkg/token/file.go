package token

import (
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

// Rotate replaces the stored cluster token with a new one pinned to caPEM (or with given,
// when set), written by write (atomically, 0600). Agents that already joined keep working:
// they renew with their node credentials, not the token.
func Rotate(path string, caPEM []byte, given string, write func(path string, data []byte) error) (Token, error) {
	hash, err := CAHash(caPEM)
	if err != nil {
		return Token{}, err
	}
	if _, err := os.Stat(path); err != nil {
		return Token{}, fmt.Errorf("cluster token %s: %w (is this a server's data dir?)", path, err)
	}
	var t Token
	if given != "" {
		if t, err = Parse(given); err != nil {
			return Token{}, fmt.Errorf("--new-token: %w", err)
		}
		if t.CAHash != "" && t.CAHash != hash {
			return Token{}, fmt.Errorf("--new-token pins another CA than this server's: it belongs to another cluster")
		}
		t.CAHash = hash
	} else if t, err = Generate(caPEM); err != nil {
		return Token{}, err
	}
	if err := write(path, []byte(t.String()+"\n")); err != nil {
		return Token{}, fmt.Errorf("write token file: %w", err)
	}
	return t, nil
}
