package datastore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/endpoint"
	"github.com/sirupsen/logrus"
)

// listen starts kine on the socket with dsn: its gRPC server and its backend (poll loop,
// compactor), stopped by halt. Its context is recorded before kine starts, so halt also
// stops a kine whose start a Fatal cut short, and Stop ends a start still under way.
func (k *Datastore) listen(dsn string) error {
	ctx, cancel := context.WithCancel(k.life)
	wg := &sync.WaitGroup{}
	k.mu.Lock()
	k.cancel, k.wg = cancel, wg
	k.mu.Unlock()
	timeout := k.cfg.CompactTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	_, err := endpoint.Listen(ctx, endpoint.Config{
		Listener:         "unix://" + k.cfg.Socket,
		Endpoint:         dsn,
		BackendTLSConfig: k.cfg.TLS,
		WaitGroup:        wg,
		CompactInterval:  k.cfg.CompactInterval,
		// kine refuses zero for these: set them explicitly.
		CompactIntervalJitter: 5,
		CompactTimeout:        timeout,
		CompactMinRetain:      1000,
		CompactBatchSize:      k.cfg.CompactBatch,
		PollBatchSize:         500,
		PollInterval:          k.cfg.PollInterval,
		NotifyInterval:        5 * time.Second,
		EmulatedETCDVersion:   k.etcdVersion(),
	})
	if err != nil {
		_ = k.halt()
		return fmt.Errorf("start kine on %s: %w", redact(dsn), err)
	}
	return nil
}

// halt stops the running kine and waits for its goroutines.
func (k *Datastore) halt() error {
	k.mu.Lock()
	cancel, wg := k.cancel, k.wg
	k.cancel, k.wg = nil, nil
	k.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("kine did not stop within 10s")
	}
	return nil
}

// fail hears kine's logrus Fatal, in the goroutine that is about to end (the guard ends it).
func (k *Datastore) fail(msg string) {
	select {
	case k.failed <- msg:
	default: // a restart is pending already
	}
}

// supervise starts kine again after a Fatal of its. kine calls logrus.Fatal where an error
// would do: a compaction transaction whose commit fails (it outlasted its time limit, or the
// disk is full) and a watch that would send an event it sent before. The goroutine that
// called it has ended (the compactor, or a watch's sender, whose stream then stalls) while
// the rest serves on, so kine is stopped and started afresh at once: the apiserver's clients
// reconnect, and its watches start again from their last revision. Restarts are spaced by a
// gap that doubles, from 1 s to 5 min, while the Fatals recur within 10 minutes.
func (k *Datastore) supervise() {
	defer k.sup.Done()
	var last time.Time
	gap := time.Second
	for {
		select {
		case <-k.life.Done():
			return
		case msg := <-k.failed:
			if time.Since(last) < 10*time.Minute {
				gap = min(2*gap, 5*time.Minute)
			} else {
				gap = time.Second
			}
			wait := max(gap-time.Since(last), 0)
			logrus.Warnf("kine stopped part of itself on an error (%s): starting it again in %s", msg, wait.Round(time.Second))
			if !k.sleep(wait) {
				return
			}
			if err := k.halt(); err != nil {
				logrus.Warnf("restart: %v", err)
			}
			if !k.restart() {
				return
			}
			last = time.Now()
			// a Fatal of the kine just stopped (its compactor is not among the goroutines
			// halt waits for) is no reason to stop the new one
			select {
			case <-k.failed:
			default:
			}
			k.restarts.Add(1)
			logrus.Infof("kine started again (restart %d)", k.restarts.Load())
		}
	}
}

// restart starts kine until it starts (true) or the stop (false). It skips SQLite's start-up
// VACUUM, which the first start did. A Fatal during the start ends only the goroutine that
// runs it, not this one.
func (k *Datastore) restart() bool {
	dsn := k.DSN()
	if k.cfg.Endpoint == "" {
		dsn += "&_kine_disable_startup_vacuum=true"
	}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		errc := make(chan error, 1)
		go func() {
			err := errors.New("kine called Fatal while it started")
			defer func() { errc <- err }()
			err = k.listen(dsn)
		}()
		err := <-errc
		if err == nil {
			return true
		}
		_ = k.halt()
		select {
		case <-k.life.Done():
			return false
		default:
		}
		logrus.Errorf("restart: %v; trying again in %s", err, delay)
		if !k.sleep(delay) {
			return false
		}
	}
}

// sleep waits d, or until the stop (false).
func (k *Datastore) sleep(d time.Duration) bool {
	select {
	case <-k.life.Done():
		return false
	case <-time.After(d):
		return true
	}
}
