package datastore

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV reads and writes keys of Outpost's own (outside the apiserver's /registry/) through the
// etcd API: kine's socket, or etcd. kine accepts only the transactions the apiserver makes
// (create when absent, update or delete at a revision), so every write is one of those.
type KV struct {
	cli *clientv3.Client
}

// Dial connects to an etcd API endpoint (unix://SOCKET for kine).
func Dial(endpoint string) (*KV, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, fmt.Errorf("datastore at %s: %w", endpoint, err)
	}
	return &KV{cli: cli}, nil
}

func (kv *KV) Close() error { return kv.cli.Close() }

// Get returns the value and its revision (0: absent).
func (kv *KV) Get(ctx context.Context, key string) ([]byte, int64, error) {
	resp, err := kv.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("datastore get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// Keys lists the keys under prefix.
func (kv *KV) Keys(ctx context.Context, prefix string) ([]string, error) {
	resp, err := kv.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("datastore list %s: %w", prefix, err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, k := range resp.Kvs {
		out = append(out, string(k.Key))
	}
	return out, nil
}

// Set creates key, or replaces it at the revision it was read at; a concurrent writer makes
// it fail rather than be overwritten.
func (kv *KV) Set(ctx context.Context, key string, value []byte) error {
	_, rev, err := kv.Get(ctx, key)
	if err != nil {
		return err
	}
	txn := kv.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, string(value)))
	if rev != 0 {
		txn = txn.Else(clientv3.OpGet(key)) // kine's update takes only the apiserver's shape
	}
	resp, err := txn.Commit()
	if err != nil {
		return fmt.Errorf("datastore write %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("datastore write %s: changed by another server meanwhile", key)
	}
	return nil
}

// Delete removes key when present.
func (kv *KV) Delete(ctx context.Context, key string) error {
	_, rev, err := kv.Get(ctx, key)
	if err != nil || rev == 0 {
		return err
	}
	if _, err := kv.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit(); err != nil {
		return fmt.Errorf("datastore delete %s: %w", key, err)
	}
	return nil
}

// Create writes key only if it is absent; created is false when it was there already (another
// server was first).
func (kv *KV) Create(ctx context.Context, key string, value []byte) (created bool, err error) {
	resp, err := kv.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).Commit()
	if err != nil {
		return false, fmt.Errorf("datastore write %s: %w", key, err)
	}
	return resp.Succeeded, nil
}
