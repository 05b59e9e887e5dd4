package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/outpostk8s/outpost/pkg/snapshot"
)

// snapshotter takes the scheduled snapshots and prunes them to the retention.
type snapshotter struct {
	store     snapshot.Store
	source    snapshot.Source
	schedule  cron.Schedule
	name      string
	node      string
	retention int
	keeper    *bootstrapKeeper // synced first, so the snapshot holds the current bootstrap data
	log       *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (s *snapshotter) Name() string               { return "etcd-snapshot" }
func (s *snapshotter) Init(context.Context) error { return nil }

func (s *snapshotter) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		snapshot.Every(ctx, s.schedule, time.Now, s.take)
	}()
	return nil
}

func (s *snapshotter) Stop(context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return nil
}

func (s *snapshotter) take(ctx context.Context) {
	if err := s.keeper.Sync(ctx); err != nil {
		s.log.Warn("bootstrap data not current in the snapshot", "err", err)
	}
	in, err := s.store.Save(ctx, s.source, s.name, s.node)
	if err != nil {
		s.log.Error("scheduled snapshot failed", "err", err)
		return
	}
	pruned, err := s.store.Prune(s.name, s.retention)
	if err != nil {
		s.log.Error("pruning snapshots", "err", err)
	}
	s.log.Info("snapshot saved", "file", in.Path, "bytes", in.Size, "pruned", len(pruned))
}
