package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
	"github.com/outpostk8s/outpost/pkg/token"
	"github.com/outpostk8s/outpost/pkg/tokensync"
)

func tokenCommand() *cli.Command {
	kubeconfig := &cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "admin kubeconfig of the cluster (default: write-kubeconfig from config.yaml, or " + datadir.DefaultKubeconfig + ")"}
	return &cli.Command{
		Name:  "token",
		Usage: "manage join tokens: agents join with DATA/server/agent-token (or one made here), servers with the cluster token in DATA/server/token",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create an extra agent join token", OnUsageError: usageError,
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
				Name: "rotate", Usage: "replace the cluster token (DATA/server/token), or with --agent the agent token, on every server; joined nodes keep working", OnUsageError: usageError,
				Flags: append(dirFlags(), &cli.StringFlag{Name: "new-token", Usage: "the new token (default: a random one)"},
					&cli.BoolFlag{Name: "agent", Usage: "rotate the agent token (DATA/server/agent-token) instead"},
					&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to wait for every server to take the new token"}),
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

// tokenRotate replaces the cluster or agent token on every server: through the datastore
// (the local server must run), then it waits until every running server took the new one.
func tokenRotate(c *cli.Context) error {
	if c.NArg() > 0 {
		return UsageError{fmt.Errorf("outpost token rotate takes no arguments (--new-token sets the token)")}
	}
	d := dirs(c)
	caPEM, err := os.ReadFile(d.ServerCAFile())
	if err != nil {
		return fmt.Errorf("server CA: %w (run this on a server, --data-dir)", err)
	}
	cluster, err := (&token.File{Path: d.TokenFile()}).Current()
	if err != nil {
		return fmt.Errorf("%w (run this on a server, --data-dir)", err)
	}
	agent, err := (&token.File{Path: d.AgentTokenFile()}).Current()
	if err != nil {
		return fmt.Errorf("%w (start the server once with this version to make one)", err)
	}
	kind, which, flag := tokensync.Cluster, "cluster token", "--token"
	if c.Bool("agent") {
		kind, which, flag = tokensync.Agent, "agent token", "--agent-token"
	}
	next, err := token.New(caPEM, c.String("new-token"), "--new-token")
	if err != nil {
		return UsageError{err}
	}
	for _, t := range []token.Token{cluster, agent} {
		if next.ID == t.ID {
			return UsageError{fmt.Errorf("--new-token has the ID of a token in use (%s): give another", t.ID)}
		}
	}
	kv, err := runningDatastore(c.Context, d)
	if err != nil {
		return err
	}
	defer kv.Close()
	if err := allServersReport(c, kv); err != nil {
		return err
	}
	if err := tokensync.Publish(c.Context, kv, kind, cluster, agent, next); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, next.String())
	fmt.Fprintf(c.App.ErrWriter, "the new %s is on its way to every server (within seconds); nodes that joined keep working. Where a server is given %s "+
		"(config.yaml, its service environment), put the new one there before it restarts.\n", which, flag)
	return waitRotated(c, kv, kind, next.ID, which, c.Duration("timeout"))
}

// runningDatastore reaches the datastore through the local server, which must run: a token
// rotated in one server's file alone would leave the others on the old one.
func runningDatastore(ctx context.Context, d datadir.Dirs) (*datastore.KV, error) {
	if _, err := os.Stat(d.KineSocket()); err != nil {
		return nil, fmt.Errorf("the server is not running (no %s): tokens rotate through the datastore; start it, then rotate", d.KineSocket())
	}
	kv, err := datastore.Dial("unix://" + d.KineSocket())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, _, err := kv.Get(ctx, "/outpost/token-rotation/probe"); err != nil {
		kv.Close()
		return nil, fmt.Errorf("the server's datastore does not answer (%w): is the server running?", err)
	}
	return kv, nil
}

// waitRotated waits until the rotation to the token ID to is done on every running server (a
// server marks it so, having removed what the old token opened), and says so, or who is behind.
func waitRotated(c *cli.Context, kv *datastore.KV, kind tokensync.Kind, to, which string, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		p, err := tokensync.Pending(c.Context, kv, kind)
		if err != nil {
			return err
		}
		servers, serr := tokensync.Servers(c.Context, kv)
		if serr != nil {
			return serr
		}
		if p == nil || p.To != to {
			return fmt.Errorf("the %s rotation record is gone or was replaced by another rotation meanwhile: see the servers' logs", which)
		}
		if p.Done {
			var live []string
			for name, r := range servers {
				if time.Since(r.Seen) <= tokensync.Live {
					live = append(live, name)
				}
			}
			sort.Strings(live)
			fmt.Fprintf(c.App.ErrWriter, "the old %s stopped working on every server (%s)\n", which, strings.Join(live, ", "))
			return nil
		}
		if time.Now().After(deadline) {
			behind, gone := tokensync.Behind(servers, kind, p.To, time.Now())
			return fmt.Errorf("after %s the old %s still works through %s (not running: %s): they take the new one when they run",
				patience, which, listOr(behind, "no server, but the rotation is not marked done yet"), listOr(gone, "none"))
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(time.Second):
		}
	}
}

func listOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return strings.Join(names, ", ")
}

// allServersReport refuses a rotation while an etcd member has never reported its tokens: a
// server of an older version, which would go on with the old token (and whose bootstrap entry
// the rotation removes). A cluster on an external datastore has no member list to check.
func allServersReport(c *cli.Context, kv *datastore.KV) error {
	if _, err := os.Stat(datastore.MemberDir(dirs(c).EtcdDataDir())); err != nil {
		return nil
	}
	ctx, cancel, cli, err := etcdClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer cli.Close()
	ms, err := datastore.Members(ctx, cli)
	if err != nil {
		return err
	}
	reports, err := tokensync.Servers(ctx, kv)
	if err != nil {
		return err
	}
	var silent []string
	for _, m := range ms {
		if _, ok := reports[m.Name]; !ok && m.Name != "" {
			silent = append(silent, m.Name)
		}
	}
	if len(silent) > 0 {
		return fmt.Errorf("server(s) %s report no tokens (an older version, or never started with this one): upgrade them first, then rotate", strings.Join(silent, ", "))
	}
	return nil
}
