package deploy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/component"
)

// Deploy watches the manifests dir and applies each file when it is new or changed, and
// retries a file whose last apply failed.
type Deploy struct {
	Dir      string
	Applier  Applier
	Interval time.Duration
	Log      *slog.Logger
	// Embedded, Values and Disabled: the packaged defaults, rendered into Dir at Init, and
	// the ones to remove from the cluster.
	Embedded fs.FS
	Values   Values
	Disabled map[string]bool
	// First are file names applied before the others, in this order: the RBAC rules the
	// node's start waits for (its name claim), ahead of the workloads.
	First []string

	mu      sync.Mutex
	applied map[string][32]byte
	failed  map[string]error
	first   chan struct{}
	once    sync.Once
	cancel  context.CancelFunc
}

func (c *Deploy) Name() string { return "deploy" }

// Init renders the embedded defaults into the dir.
func (c *Deploy) Init(context.Context) error {
	c.applied, c.failed, c.first = map[string][32]byte{}, map[string]error{}, make(chan struct{})
	if c.Interval == 0 {
		c.Interval = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Embedded == nil {
		return nil
	}
	_, err := WriteDefaults(c.Embedded, c.Dir, c.Values, c.Disabled)
	return err
}

// Start runs the loop in the background.
func (c *Deploy) Start(ctx context.Context) error {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go c.loop(ctx)
	return nil
}

func (c *Deploy) loop(ctx context.Context) {
	c.removeDisabled(ctx)
	for {
		c.Sync(ctx)
		c.once.Do(func() { close(c.first) })
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.Interval):
		}
	}
}

// removeDisabled deletes the objects of disabled packaged components, retrying until done.
func (c *Deploy) removeDisabled(ctx context.Context) {
	for name := range c.Disabled {
		data, err := Render(c.Embedded, name+".yaml", c.Values)
		if err != nil {
			continue
		}
		objs, err := Decode(data)
		if err != nil {
			continue
		}
		for ctx.Err() == nil {
			if err := c.Applier.Delete(ctx, objs); err == nil {
				break
			} else {
				c.Log.Warn("removing disabled component", "component", name, "err", err)
			}
			time.Sleep(c.Interval)
		}
	}
}

// Sync applies what changed since the last pass.
func (c *Deploy) Sync(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(c.Dir, "*.yaml"))
	if err != nil {
		return
	}
	more, _ := filepath.Glob(filepath.Join(c.Dir, "*.yml"))
	files = append(files, more...)
	sort.Strings(files)
	for _, f := range c.ordered(files) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // removed while listing
		}
		sum := sha256.Sum256(data)
		c.mu.Lock()
		prev, seen := c.applied[f]
		_, failed := c.failed[f]
		c.mu.Unlock()
		if seen && prev == sum && !failed {
			continue
		}
		err = c.applyFile(ctx, data)
		c.mu.Lock()
		c.applied[f] = sum
		if err != nil {
			if prevErr, was := c.failed[f]; !was || prevErr.Error() != err.Error() {
				c.Log.Warn("apply failed; will retry", "file", filepath.Base(f), "err", err)
			}
			c.failed[f] = err
		} else {
			delete(c.failed, f)
			c.Log.Info("applied", "file", filepath.Base(f))
		}
		c.mu.Unlock()
	}
}

// ordered puts the files named in First ahead of the others, keeping both in their order.
func (c *Deploy) ordered(files []string) []string {
	rank := func(f string) int {
		for i, n := range c.First {
			if filepath.Base(f) == n {
				return i
			}
		}
		return len(c.First)
	}
	sort.SliceStable(files, func(i, j int) bool { return rank(files[i]) < rank(files[j]) })
	return files
}

func (c *Deploy) applyFile(ctx context.Context, data []byte) error {
	objs, err := Decode(data)
	if err != nil {
		return err
	}
	return c.Applier.Apply(ctx, objs)
}

// Ready once the first pass applied every file.
func (c *Deploy) Ready(context.Context) error {
	select {
	case <-c.first:
	default:
		return fmt.Errorf("first pass not done")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for f, err := range c.failed {
		names = append(names, filepath.Base(f)+": "+err.Error())
	}
	if len(names) > 0 {
		return fmt.Errorf("not applied: %s", strings.Join(names, "; "))
	}
	return nil
}

// Stop ends the loop.
func (c *Deploy) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

var _ component.Component = (*Deploy)(nil)
