package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// ParseSchedule reads a cron spec as k3s's --etcd-snapshot-schedule-cron takes it: five
// fields, or six with seconds first, or a descriptor such as @every 6h.
func ParseSchedule(spec string) (cron.Schedule, error) {
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err := p.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("--etcd-snapshot-schedule-cron %q: %w (five cron fields, e.g. \"0 */12 * * *\")", spec, err)
	}
	return s, nil
}

// Every runs fn at each time the schedule names until ctx ends. A run that takes past the
// next time skips it rather than piling up.
func Every(ctx context.Context, s cron.Schedule, now func() time.Time, fn func(context.Context)) {
	for {
		next := s.Next(now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		fn(ctx)
	}
}
