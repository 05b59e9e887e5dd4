package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/outpostk8s/outpost/pkg/bootstrap"
	"github.com/outpostk8s/outpost/pkg/datastore"
	"github.com/outpostk8s/outpost/pkg/snapshot"
	"github.com/outpostk8s/outpost/pkg/token"
)

// snapshotCommand is k3s's etcd-snapshot, for the SQLite datastore (online: VACUUM INTO).
func snapshotCommand() *cli.Command {
	common := append(dirFlags(),
		&cli.StringFlag{Name: "etcd-snapshot-dir", Aliases: []string{"dir"}, Usage: "snapshot dir (default DATA/server/db/snapshots)"},
		&cli.StringFlag{Name: "node-name", Usage: "node name in snapshot file names (default: the hostname)"},
		&cli.StringFlag{Name: "datastore-endpoint", Hidden: true, Usage: "read from config.yaml: an external datastore has no snapshots here"},
	)
	named := append(common[:len(common):len(common)], &cli.StringFlag{Name: "name", Value: snapshot.OnDemandName, Usage: "snapshot name prefix"})
	prune := append(named[:len(named):len(named)], &cli.IntFlag{Name: "snapshot-retention", Aliases: []string{"etcd-snapshot-retention"}, Value: 5, Usage: "snapshots of the name to keep"})
	sub := func(name, usage string, flags []cli.Flag, action cli.ActionFunc, aliases ...string) *cli.Command {
		return &cli.Command{Name: name, Aliases: aliases, Usage: usage, Flags: flags, Before: applyToolConfig(flags), OnUsageError: usageError, Action: action}
	}
	return &cli.Command{
		Name:    "etcd-snapshot",
		Aliases: []string{"snapshot"},
		Usage:   "save, list, delete and prune datastore snapshots (SQLite or embedded etcd; restore with `server --cluster-reset --cluster-reset-restore-path`)",
		Subcommands: []*cli.Command{
			sub("save", "take a snapshot now (the server may be running)", named, snapshotSave),
			sub("ls", "list snapshots, newest first", common, snapshotList, "list"),
			sub("delete", "delete the named snapshots", common, snapshotDelete),
			sub("prune", "delete all but the newest --snapshot-retention snapshots of --name", prune, snapshotPrune),
		},
	}
}

func snapshotStore(c *cli.Context) (snapshot.Store, error) {
	if c.String("datastore-endpoint") != "" {
		return snapshot.Store{}, fmt.Errorf("this server uses an external datastore (datastore-endpoint): back it up with its own tools")
	}
	dir := c.String("etcd-snapshot-dir")
	if dir == "" {
		dir = dirs(c).Snapshots()
	}
	return snapshot.Store{Dir: dir}, nil
}

func snapshotSave(c *cli.Context) error {
	if c.NArg() > 0 {
		return UsageError{fmt.Errorf("outpost etcd-snapshot save takes no arguments (--name sets the name)")}
	}
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	d := dirs(c)
	// Embedded etcd once its data dir holds a member (as the server decides), else SQLite.
	var src snapshot.Source = datastore.SQLiteSource{File: d.DBFile()}
	get := datastore.SQLiteGet
	if _, err := os.Stat(datastore.MemberDir(d.EtcdDataDir())); err == nil {
		src = datastore.EtcdSource{Endpoint: "unix://" + d.KineSocket()}
		get = func(_ context.Context, path, key string) ([]byte, bool, error) {
			return datastore.EtcdSnapshotGet(path, key)
		}
	} else if _, err := os.Stat(d.DBFile()); err != nil {
		return fmt.Errorf("no SQLite datastore at %s and no etcd at %s (run this on a server, --data-dir): %w", d.DBFile(), d.EtcdDataDir(), err)
	}
	node := c.String("node-name")
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		node = strings.ToLower(h)
	}
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
	defer cancel()
	in, err := store.Save(ctx, src, c.String("name"), node)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Snapshot %s saved: %s (%d bytes)\n", in.Name, in.Path, in.Size)
	// A restore on another machine needs the bootstrap data, which a running server stores.
	if tok, err := (&token.File{Path: d.TokenFile()}).Current(); err == nil {
		if _, key, err := bootstrap.Find(tok, func(k string) ([]byte, bool, error) { return get(ctx, in.Path, k) }); err == nil && key == "" {
			fmt.Fprintln(c.App.ErrWriter, "warning: the snapshot holds no bootstrap data for the current token (the server stores it within 30 s of starting or of a token change): a restore elsewhere would lack the CAs")
		}
	}
	return nil
}

func snapshotList(c *cli.Context) error {
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	list, err := store.List()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "Name\tLocation\tSize\tCreated")
	for _, in := range list {
		fmt.Fprintf(w, "%s\tfile://%s\t%d\t%s\n", in.Name, in.Path, in.Size, in.Created.UTC().Format(time.RFC3339))
	}
	return w.Flush()
}

func snapshotDelete(c *cli.Context) error {
	if c.NArg() == 0 {
		return UsageError{fmt.Errorf("outpost etcd-snapshot delete NAME...: name the snapshots (see `outpost etcd-snapshot ls`)")}
	}
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	if err := store.Delete(c.Args().Slice()...); err != nil {
		return err
	}
	for _, n := range c.Args().Slice() {
		fmt.Fprintf(c.App.Writer, "Snapshot %s deleted\n", n)
	}
	return nil
}

func snapshotPrune(c *cli.Context) error {
	if c.NArg() > 0 {
		return UsageError{fmt.Errorf("outpost etcd-snapshot prune takes no arguments (--name, --snapshot-retention)")}
	}
	store, err := snapshotStore(c)
	if err != nil {
		return err
	}
	deleted, err := store.Prune(c.String("name"), c.Int("snapshot-retention"))
	for _, n := range deleted {
		fmt.Fprintf(c.App.Writer, "Snapshot %s deleted\n", n)
	}
	return err
}
