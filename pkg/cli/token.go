package cli

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
	"github.com/outpostk8s/outpost/pkg/pki"
	"github.com/outpostk8s/outpost/pkg/token"
)

func tokenCommand() *cli.Command {
	kubeconfig := &cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "admin kubeconfig of the cluster (default: write-kubeconfig from config.yaml, or " + datadir.DefaultKubeconfig + ")"}
	return &cli.Command{
		Name:  "token",
		Usage: "manage extra join tokens (the cluster token is in DATA/server/token)",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a join token", OnUsageError: usageError,
				Flags: []cli.Flag{kubeconfig,
					&cli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, Usage: "lifetime; 0 for a token that never expires"},
					&cli.StringFlag{Name: "description", Usage: "what the token is for"}},
				Action: func(c *cli.Context) error {
					store, caPEM, err := tokenStore(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					if c.Duration("ttl") < 0 {
						return UsageError{fmt.Errorf("--ttl %s is negative", c.Duration("ttl"))}
					}
					t, err := store.Create(c.Context, caPEM, c.Duration("ttl"), c.String("description"))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, t.String())
					return nil
				},
			},
			{
				Name: "list", Usage: "list the join tokens", OnUsageError: usageError, Flags: []cli.Flag{kubeconfig},
				Action: func(c *cli.Context) error {
					store, _, err := tokenStore(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					list, err := store.List(c.Context)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tEXPIRES\tDESCRIPTION")
					for _, i := range list {
						exp := "never"
						if !i.Expires.IsZero() {
							exp = i.Expires.Format(time.RFC3339)
							if i.Expired(time.Now()) {
								exp += " (expired)"
							}
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\n", i.ID, exp, i.Description)
					}
					return tw.Flush()
				},
			},
			{
				Name: "rotate", Usage: "replace the cluster token (in DATA/server/token); joined agents keep working", OnUsageError: usageError,
				Flags:  append(dirFlags(), &cli.StringFlag{Name: "new-token", Usage: "the new token (default: a random one)"}),
				Before: applyToolConfig(dirFlags()),
				Action: tokenRotate,
			},
			{
				Name: "delete", Usage: "delete a join token by ID", ArgsUsage: "ID", OnUsageError: usageError, Flags: []cli.Flag{kubeconfig},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return UsageError{fmt.Errorf("outpost token delete takes one token ID (see `outpost token list`)")}
					}
					store, _, err := tokenStore(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					return store.Delete(c.Context, c.Args().First())
				},
			},
		},
	}
}

// tokenStore connects with the admin kubeconfig and returns the CA the tokens pin.
func tokenStore(kubeconfig string) (token.Store, []byte, error) {
	if kubeconfig == "" {
		kc, err := adminKubeconfig()
		if err != nil {
			return token.Store{}, nil, err
		}
		kubeconfig = kc
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		return token.Store{}, nil, fmt.Errorf("admin kubeconfig %s: %w (run this on a server, or pass --kubeconfig)", kubeconfig, err)
	}
	rc, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return token.Store{}, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return token.Store{}, nil, err
	}
	if len(rc.CAData) == 0 {
		return token.Store{}, nil, fmt.Errorf("kubeconfig %s has no certificate-authority-data to pin", kubeconfig)
	}
	return token.Store{Client: cs}, rc.CAData, nil
}

// tokenRotate writes a new cluster token; the running server reads the file at each join.
func tokenRotate(c *cli.Context) error {
	if c.NArg() > 0 {
		return UsageError{fmt.Errorf("outpost token rotate takes no arguments (--new-token sets the token)")}
	}
	d := dirs(c)
	caPEM, err := os.ReadFile(d.ServerCAFile())
	if err != nil {
		return fmt.Errorf("server CA: %w (run this on a server, --data-dir)", err)
	}
	t, err := token.Rotate(d.TokenFile(), caPEM, c.String("new-token"),
		func(p string, b []byte) error { return pki.WriteFile(p, b, 0o600) })
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, t.String())
	fmt.Fprintln(c.App.ErrWriter, "the old cluster token no longer joins; agents that joined keep working. Where the server is given --token "+
		"(config.yaml, OUTPOST_TOKEN in its service environment), put the new one there before it restarts.")
	return nil
}
