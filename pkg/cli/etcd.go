package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/kubeclient"
)

// etcdCommand manages the members of the embedded etcd through the local server's socket.
func etcdCommand() *cli.Command {
	flags := dirFlags()
	sub := func(name, usage, args string, action cli.ActionFunc, aliases ...string) *cli.Command {
		return &cli.Command{Name: name, Aliases: aliases, Usage: usage, ArgsUsage: args, Flags: flags, Before: applyToolConfig(flags), OnUsageError: usageError, Action: action}
	}
	return &cli.Command{
		Name:  "etcd",
		Usage: "the embedded etcd's members (run on a server)",
		Subcommands: []*cli.Command{{
			Name:  "member",
			Usage: "list or remove etcd members",
			Subcommands: []*cli.Command{
				sub("list", "list the members", "", etcdMemberList, "ls"),
				sub("remove", "remove a member (a server gone for good), by name", "NAME", etcdMemberRemove),
			},
		}},
	}
}

// etcdClient reaches the running server's etcd on its root-only socket; the caller
// closes the client and cancels the context.
func etcdClient(c *cli.Context) (context.Context, context.CancelFunc, *clientv3.Client, error) {
	d := dirs(c)
	if _, err := os.Stat(datastore.MemberDir(d.EtcdDataDir())); err != nil {
		return nil, nil, nil, fmt.Errorf("no embedded etcd at %s (a server started with --cluster-init or --server; --data-dir): %w", d.EtcdDataDir(), err)
	}
	cli, err := datastore.Client("unix://" + d.KineSocket())
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	return ctx, cancel, cli, nil
}

func etcdMemberList(c *cli.Context) error {
	ctx, cancel, cli, err := etcdClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer cli.Close()
	ms, err := datastore.Members(ctx, cli)
	if err != nil {
		return fmt.Errorf("%w (is the server running?)", err)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tPEER")
	for _, m := range ms {
		name := m.Name
		if name == "" {
			name = "(not started)"
		}
		fmt.Fprintf(w, "%s\t%x\t%s\n", name, m.ID, strings.Join(m.PeerURLs, ","))
	}
	return w.Flush()
}

func etcdMemberRemove(c *cli.Context) error {
	if c.NArg() != 1 {
		return UsageError{fmt.Errorf("outpost etcd member remove takes one member name (see `outpost etcd member list`)")}
	}
	name := c.Args().First()
	ctx, cancel, cli, err := etcdClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	defer cli.Close()
	ok, err := datastore.RemoveMember(ctx, cli, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no etcd member named %q (see `outpost etcd member list`)", name)
	}
	fmt.Fprintf(c.App.Writer, "etcd member %s removed\n", name)
	if err := forgetServerName(ctx, dirs(c), name); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s's node password record stays (%v): delete it, or a new machine named %s cannot join: kubectl -n kube-system delete secret %s\n",
			name, err, name, join.SecretName(name))
	}
	return nil
}

// forgetServerName frees a removed server's name: its node-password record binds it to that
// machine, and a server's record outlives a missing Node (--disable-agent).
func forgetServerName(ctx context.Context, d datadir.Dirs, name string) error {
	cs, err := kubeclient.New(d.AdminKubeconfig())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, join.SecretName(name), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
