package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/encryption"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
	"github.com/outpostk8s/outpost/pkg/pki"
)

func secretsEncryptCommand() *cli.Command {
	flags := dirFlags()
	return &cli.Command{
		Name:  "secrets-encrypt",
		Usage: "Secrets encryption at rest (turned on by `outpost server --secrets-encryption`)",
		Subcommands: []*cli.Command{
			{
				Name: "status", Usage: "say whether Secrets are encrypted, with which keys, and how each stored Secret is", OnUsageError: usageError,
				Flags: flags, Before: applyToolConfig(flags),
				Action: secretsStatus,
			},
			{
				Name: "rotate-keys", Usage: "encrypt every Secret with a new key, then drop the old one (the server must run)", OnUsageError: usageError,
				Flags: flags, Before: applyToolConfig(flags),
				Action: secretsRotate,
			},
		},
	}
}

func secretsStatus(c *cli.Context) error {
	d := dirs(c)
	path := d.EncryptionConfig()
	cfg, err := encryption.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(c.App.Writer, "Encryption Status: Disabled (start the server with --secrets-encryption)")
		return nil
	} else if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Encryption Status: Enabled\nProvider: %s\nConfig: %s\nKeys:\n", cfg.Provider, path)
	for i, k := range cfg.Keys {
		role := "decrypts"
		if i == 0 {
			role = "active: encrypts new writes"
		}
		fmt.Fprintf(w, "  %s (%s)\n", k.Name, role)
	}
	ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
	defer cancel()
	vals, err := datastore.Values(ctx, d.KineSocket(), "/registry/secrets/")
	if err != nil {
		fmt.Fprintf(w, "Stored Secrets: not checked (%v)\n", err)
		return nil
	}
	counts := map[string]int{}
	for _, v := range vals {
		counts[keyOf(cfg, v)]++
	}
	fmt.Fprintf(w, "Stored Secrets: %d\n", len(vals))
	for _, k := range cfg.Keys {
		fmt.Fprintf(w, "  with %s: %d\n", k.Name, counts[k.Name])
	}
	if n := counts[""]; n > 0 {
		fmt.Fprintf(w, "  not encrypted: %d (run `outpost secrets-encrypt rotate-keys`)\n", n)
	}
	fmt.Fprintln(w, "Earlier revisions of a Secret stay in the datastore's history until compaction drops them (kine keeps the last 1000 revisions).")
	return nil
}

// keyOf names the key a stored value was encrypted with, "" for none known.
func keyOf(cfg encryption.Config, v []byte) string {
	for _, k := range cfg.Keys {
		if strings.HasPrefix(string(v), cfg.Prefix(k)) {
			return k.Name
		}
	}
	return ""
}

func secretsRotate(c *cli.Context) error {
	d := dirs(c)
	if os.Geteuid() != 0 {
		return errors.New("outpost secrets-encrypt rotate-keys must run as root, on a server")
	}
	path := d.EncryptionConfig()
	cfg, err := encryption.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("secrets encryption is off: start the server with --secrets-encryption first")
	} else if err != nil {
		return err
	}
	client, err := kubeclient.New(d.AdminKubeconfig())
	if err != nil {
		return fmt.Errorf("server admin credentials (run this on a server, --data-dir): %w", err)
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Minute)
	defer cancel()
	// The server must run: rotating under a stopped one would leave Secrets under a key no
	// one re-encrypted from.
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("the server does not answer: start it, then rotate: %w", err)
	}
	next, err := cfg.Rotated(time.Now())
	if err != nil {
		return err
	}
	if err := writeEncryption(path, next); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "new key %s written; waiting for the apiserver to load it (up to a minute)\n", next.Keys[0].Name)
	b, _ := next.Marshal()
	if err := encryption.WaitLoaded(ctx, client, encryption.Hash(b)); err != nil {
		return err
	}
	n, err := encryption.ReEncrypt(ctx, client)
	if err != nil {
		return fmt.Errorf("%w: the old key is kept, run rotate-keys again", err)
	}
	if err := writeEncryption(path, next.Pruned()); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "re-encrypted %d Secrets with %s; the old keys are dropped\n", n, next.Keys[0].Name)
	return nil
}

func writeEncryption(path string, cfg encryption.Config) error {
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return pki.WriteFile(path, b, 0o600)
}
