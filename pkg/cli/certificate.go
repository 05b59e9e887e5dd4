package cli

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/pki"
)

func certificateCommand() *cli.Command {
	flags := dirFlags()
	return &cli.Command{
		Name:  "certificate",
		Usage: "check and rotate this machine's certificates",
		Subcommands: []*cli.Command{
			{
				Name: "check", Usage: "list every certificate with its expiry", OnUsageError: usageError,
				Flags: flags, Before: applyToolConfig(flags),
				Action: func(c *cli.Context) error { return certificateCheck(c) },
			},
			{
				Name: "rotate", Usage: "re-issue the server's leaf certificates with new keys (the CAs stay)", OnUsageError: usageError,
				Flags: flags, Before: applyToolConfig(flags),
				Action: func(c *cli.Context) error { return certificateRotate(c) },
			},
		},
	}
}

func certificateCheck(c *cli.Context) error {
	d := dirs(c)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DIR\tCERTIFICATE\tSUBJECT\tEXPIRES\tREMAINING")
	now, found := time.Now(), false
	var expired []string
	for _, dir := range []string{d.TLS(), d.AgentTLS()} {
		infos, err := pki.Inspect(dir)
		if err != nil {
			return err
		}
		for _, i := range infos {
			found = true
			left := i.NotAfter.Sub(now)
			remaining := fmt.Sprintf("%dd", int(left.Hours()/24))
			if left < 48*time.Hour {
				remaining = left.Truncate(time.Second).String()
			}
			if left <= 0 {
				remaining = "EXPIRED"
				expired = append(expired, i.Name)
			}
			kind := ""
			if i.IsCA {
				kind = " (CA)"
			}
			fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\n", dir, i.Name, kind, i.Subject, i.NotAfter.UTC().Format(time.RFC3339), remaining)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no certificates under %s: is that the data dir of a server or agent that has started once? (--data-dir)", d.Data)
	}
	if len(expired) > 0 {
		return fmt.Errorf("expired: %v: run `outpost certificate rotate` on a server, restart an agent", expired)
	}
	return nil
}

func certificateRotate(c *cli.Context) error {
	d := dirs(c)
	if os.Geteuid() != 0 {
		return errors.New("outpost certificate rotate must run as root: it rewrites the data dir's keys")
	}
	if _, err := os.Stat(d.TLS()); err != nil {
		if _, aerr := os.Stat(d.AgentTLS()); aerr == nil {
			return errors.New("an agent's certificates come from its server: restart `outpost agent` and it renews them, or wait: it renews them before they expire")
		}
		return fmt.Errorf("no server certificates at %s: %w (--data-dir)", d.TLS(), err)
	}
	done, err := pki.RotateLeaves(d.TLS(), 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "rotated %d certificates in %s: %v\n", len(done), d.TLS(), done)
	fmt.Fprintln(c.App.Writer, "a running server serves the new apiserver certificate within a minute, its clients use theirs within minutes and "+
		"it rewrites the admin kubeconfig within its check interval (an hour); a stopped one uses them at its next start. "+
		"The old certificates stay valid until they expire: rotating is not revoking")
	return nil
}
