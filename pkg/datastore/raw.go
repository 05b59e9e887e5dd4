package datastore

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Values reads the stored values under prefix straight from the datastore (through the
// server's kine socket), as the apiserver wrote them: encrypted values stay encrypted. It is
// how `outpost secrets-encrypt status` sees what is really at rest.
func Values(ctx context.Context, socket, prefix string) (map[string][]byte, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + socket}, DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, fmt.Errorf("datastore at %s: %w", socket, err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("datastore at %s: %w (is the server running?)", socket, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out, nil
}

// nopLogger keeps the etcd client's own logging off the command's output.
func nopLogger() *zap.Logger { return zap.NewNop() }

// Client is an etcd API client on endpoint (unix://SOCKET for the server's datastore),
// quiet in the command's output.
func Client(endpoint string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, fmt.Errorf("datastore at %s: %w", endpoint, err)
	}
	return cli, nil
}
