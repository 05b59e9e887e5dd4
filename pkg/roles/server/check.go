package server

import (
	"github.com/outpostk8s/outpost/pkg/config"
	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/gpu/layer"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
	"github.com/outpostk8s/outpost/pkg/prestart"
	"github.com/outpostk8s/outpost/pkg/roles/node"
)

// Checked is what a server's check step found and the run needs: nothing a check computed is
// computed again.
type Checked struct {
	Restore *Restore    // a --cluster-reset-restore-path checked and copied
	Join    *Join       // the cluster data of a server joining with --server
	GPU     *layer.Plan // the GPUs detected, nil without a node or GPU support

	host prestart.Plan
}

// Check runs every pre-start check of `outpost server`, before anything is written: the
// snapshot to restore, the shared datastore, the server join, then the host (GPU detection
// included). Bad input stops the start here with one line. The command is complete → check
// → lock → run.
func Check(cfg *config.Server, host hostcheck.Host) (_ *Checked, err error) {
	c := cfg.Control
	ck := &Checked{host: prestart.Plan{Dirs: c.Dirs, API: &prestart.API{BindAddress: c.BindAddress, Port: c.HTTPSPort, Etcd: c.Etcd}}}
	if ck.Restore, err = checkRestore(c); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // the snapshot's private copy goes with a refused start
			ck.Restore.Discard()
		}
	}()
	if err = checkShared(c); err != nil {
		return nil, err
	}
	if ck.Join, err = checkJoin(c); err != nil {
		return nil, err
	}
	if cfg.Node != nil {
		ck.host.Node, ck.host.GPU = true, func() (err error) { ck.GPU, err = node.CheckGPU(cfg.Node); return err }
	}
	if err = ck.host.Host(host); err != nil {
		return nil, err
	}
	return ck, nil
}

// Lock takes the data dir's lock once the ports the server listens on are free.
func (ck *Checked) Lock() (*datadir.Lock, error) { return ck.host.Lock(prestart.Free) }

// Discard removes the restore's snapshot copy, when the start ends before the restore.
func (ck *Checked) Discard() { ck.Restore.Discard() }
