// Package snapshotter takes the scheduled datastore snapshots (--etcd-snapshot-schedule-cron)
// and prunes them to the retention.
package snapshotter

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/outpostk8s/outpost/pkg/component"
	"github.com/outpostk8s/outpost/pkg/snapshot"
)

// Keeper stores the current bootstrap data in the datastore (bootstrapdata.Keeper).
type Keeper interface {
	Sync(ctx context.Context) error
}

// Snapshotter takes the scheduled snapshots and prunes them to the retention.
type Snapshotter struct {
	Store        snapshot.Store
	Source       snapshot.Source
	Schedule     cron.Schedule
	SnapshotName string // the files' name prefix (--etcd-snapshot-name)
	Node         string
	Retention    int
	Keeper       Keeper // synced first, so the snapshot holds the current bootstrap data
	Log          *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Snapshotter) Name() string               { return "etcd-snapshot" }
func (s *Snapshotter) Init(context.Context) error { return nil }

func (s *Snapshotter) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		snapshot.Every(ctx, s.Schedule, time.Now, s.take)
	}()
	return nil
}

func (s *Snapshotter) Stop(context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return nil
}

func (s *Snapshotter) take(ctx context.Context) {
	if err := s.Keeper.Sync(ctx); err != nil {
		s.Log.Warn("bootstrap data not current in the snapshot", "err", err)
	}
	in, err := s.Store.Save(ctx, s.Source, s.SnapshotName, s.Node)
	if err != nil {
		s.Log.Error("scheduled snapshot failed", "err", err)
		return
	}
	pruned, err := s.Store.Prune(s.SnapshotName, s.Retention)
	if err != nil {
		s.Log.Error("pruning snapshots", "err", err)
	}
	s.Log.Info("snapshot saved", "file", in.Path, "bytes", in.Size, "pruned", len(pruned))
}

var _ component.Component = (*Snapshotter)(nil)
