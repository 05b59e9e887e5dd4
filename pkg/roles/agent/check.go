package agent

import (
	"context"
	"time"

	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/join"
	"github.com/outpostk8s/outpost/pkg/prestart"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

// Checked is what an agent's check step found and the run needs.
type Checked struct {
	Joined *join.Result // the join's answer: credentials and the cluster's settings
	GPU    *layer.Plan  // the GPUs detected, nil with GPU support off

	host prestart.Plan
}

// Check runs every pre-start check of `outpost agent`: the host (GPU detection included),
// then the join, before anything is written (a refused join leaves no data dir behind). The
// cluster's settings from the join answer become the node's. The command is complete → check
// → lock → run.
func Check(ctx context.Context, cfg *config.Agent, host hostcheck.Host) (ck *Checked, err error) {
	n := cfg.Node
	ck = &Checked{host: prestart.Plan{Dirs: n.Dirs, Node: true, LB: true}}
	ck.host.GPU = func() (err error) { ck.GPU, err = node.CheckGPU(n); return err }
	if err := ck.host.Host(host); err != nil {
		return nil, err
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ck.Joined, err = join.Agent{Client: join.Client{Servers: cfg.Join.Servers, Token: cfg.Join.Token},
		Name: n.NodeName, IP: n.NodeIP.String(), Dir: n.Dirs.AgentTLS(), PasswordFile: cfg.Join.PasswordFile}.Start(jctx)
	if err != nil {
		return nil, err
	}
	n.Cluster = ck.Joined.Settings
	return ck, nil
}

// Lock takes the data dir's lock once the ports the agent listens on are free.
func (ck *Checked) Lock() (*datadir.Lock, error) { return ck.host.Lock(prestart.Free) }
