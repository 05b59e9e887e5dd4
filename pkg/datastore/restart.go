package datastore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/endpoint"
	"github.com/sirupsen/logrus"
)

// listen starts kine on the socket: its gRPC server and its backend (poll loop, compactor),
// stopped by halt.
func (k *Datastore) listen() error {
	ctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	timeout := k.cfg.CompactTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	_, err := endpoint.Listen(ctx, endpoint.Config{
		Listener:         "unix://" + k.cfg.Socket,
		Endpoint:         k.DSN(),
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
		cancel()
		return fmt.Errorf("start kine on %s: %w", redact(k.DSN()), err)
	}
	k.mu.Lock()
	k.cancel, k.wg = cancel, wg
	k.mu.Unlock()
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
// called it has ended (the compactor, or a watch's sender) while the rest serves on, so kine
// is stopped and started afresh after a pause that grows while the Fatals recur: the
// apiserver's clients reconnect, and its watches start again from their last revision.
func (k *Datastore) supervise() {
	defer k.sup.Done()
	var last time.Time
	pause := time.Second
	for {
		select {
		case <-k.stop:
			return
		case msg := <-k.failed:
			if time.Since(last) < 10*time.Minute {
				pause = min(2*pause, 5*time.Minute)
			} else {
				pause = time.Second
			}
			logrus.Warnf("kine stopped part of itself on an error (%s): starting it again in %s", msg, pause)
			if !k.sleep(pause) {
				return
			}
			if err := k.halt(); err != nil {
				logrus.Warnf("restart: %v", err)
			}
			for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
				err := k.listen()
				if err == nil {
					break
				}
				logrus.Errorf("restart: %v; trying again in %s", err, delay)
				if !k.sleep(delay) {
					return
				}
			}
			last = time.Now()
			k.restarts.Add(1)
			logrus.Infof("kine started again (restart %d)", k.restarts.Load())
		}
	}
}

// sleep waits d, or until the stop (false).
func (k *Datastore) sleep(d time.Duration) bool {
	select {
	case <-k.stop:
		return false
	case <-time.After(d):
		return true
	}
}
