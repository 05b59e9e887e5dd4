package datastore

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// kineHealthKey is kine's own health record, not cluster state.
const kineHealthKey = "/registry/health"

// MigrateSQLite copies every current key of a kine SQLite file into etcd, each only where
// etcd does not hold it yet, so a migration cut short runs again safely. Keys with a lease
// (Events) get a fresh lease of the same TTL. It returns how many keys it wrote.
func MigrateSQLite(ctx context.Context, file string, cli *clientv3.Client) (int, error) {
	leases := map[int64]clientv3.LeaseID{}
	n := 0
	err := SQLiteEach(ctx, file, func(r SQLiteRow) error {
		if r.Key == kineHealthKey {
			return nil
		}
		var opts []clientv3.OpOption
		if r.Lease > 0 {
			id, ok := leases[r.Lease]
			if !ok {
				l, err := cli.Grant(ctx, r.Lease)
				if err != nil {
					return fmt.Errorf("migrate: lease: %w", err)
				}
				id, leases[r.Lease] = l.ID, l.ID
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(r.Key), "=", 0)).
			Then(clientv3.OpPut(r.Key, string(r.Value), opts...)).Commit()
		if err != nil {
			return fmt.Errorf("migrate %s: %w", r.Key, err)
		}
		if resp.Succeeded {
			n++
		}
		return nil
	})
	return n, err
}
