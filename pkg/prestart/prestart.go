// Package prestart holds the checks a start makes before it writes anything: the host's
// features, the GPU settings against the hardware, the data-dir lock and the ports. What is
// checked follows the role: a control plane without a node needs no cgroups, iptables or
// kubelet ports.
package prestart

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"

	"github.com/outpostk8s/outpost/pkg/datadir"
	"github.com/outpostk8s/outpost/pkg/hostcheck"
)

// Plan is what a start will run.
type Plan struct {
	Dirs datadir.Dirs
	Node bool // containerd, the kubelet, pods
	API  *API // the control plane, listening here; nil on an agent
	LB   bool // an agent's load balancer
	// GPU checks the node's GPU settings against the hardware; nil without a node.
	GPU func() error
}

// API is where the apiserver listens.
type API struct {
	BindAddress string
	Port        int
	Etcd        bool // embedded etcd: its client and peer ports too
}

// Host runs the fatal host checks the plan needs, then the GPU check.
func (p Plan) Host(h hostcheck.Host) error {
	if err := p.Fatal(h.Checks()); err != nil {
		return err
	}
	if p.GPU != nil {
		return p.GPU()
	}
	return nil
}

// Fatal names the first of checks the plan cannot start without, or is nil.
func (p Plan) Fatal(checks []hostcheck.Check) error {
	if chk, bad := hostcheck.FirstFatal(checks, p.Node); bad {
		return fmt.Errorf("host not ready: %s: %s — fix: %s (run 'outpost check-config' for every check)", chk.Name, chk.Detail, chk.Fix)
	}
	return nil
}

// Port is one a start listens on, and how to move it or what to stop.
type Port struct {
	Addr  string
	Port  int
	Owner string
	Fix   string
}

// Ports lists the plan's ports.
func (p Plan) Ports() []Port {
	var ports []Port
	if p.Node {
		ports = append(ports,
			Port{"0.0.0.0", 10250, "kubelet", "stop the other kubelet (k3s, kubeadm?)"},
			Port{"127.0.0.1", 10248, "kubelet healthz", "stop the other kubelet"},
			Port{"127.0.0.1", 10256, "kube-proxy healthz", "stop the other kube-proxy"})
	}
	if p.LB {
		ports = append(ports, Port{"127.0.0.1", 6444, "agent load balancer", "stop the other agent"})
	}
	if p.API != nil {
		ports = append(ports, Port{p.API.BindAddress, p.API.Port, "kube-apiserver", "set --https-listen-port"},
			Port{"127.0.0.1", 10257, "kube-controller-manager", "stop the other control plane"},
			Port{"127.0.0.1", 10259, "kube-scheduler", "stop the other control plane"})
		if p.API.Etcd {
			ports = append(ports, Port{"0.0.0.0", 2379, "etcd clients", "stop the other etcd"},
				Port{"0.0.0.0", 2380, "etcd peers", "stop the other etcd"})
		}
	}
	return ports
}

// Listen checks that a port is free; Free is the real one, tests inject their own.
type Listen func(addr string, port int) error

// Free fails when addr:port is taken.
func Free(addr string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// Lock refuses a second Outpost on the data dir, then a port taken by another program, before
// anything is written: a refused start leaves no files behind. It creates the data dir and
// returns its lock, held until Release.
func (p Plan) Lock(listen Listen) (*datadir.Lock, error) {
	var lock *datadir.Lock
	if _, err := os.Stat(p.Dirs.Lock()); err == nil {
		if lock, err = datadir.Acquire(p.Dirs.Lock()); err != nil {
			return nil, err
		}
	}
	for _, pt := range p.Ports() {
		if listen(pt.Addr, pt.Port) != nil {
			lock.Release()
			return nil, fmt.Errorf("port %d (%s) is already in use by another program: stop it, or %s", pt.Port, pt.Owner, pt.Fix)
		}
	}
	if lock != nil {
		return lock, nil
	}
	if err := writable(p.Dirs.Data); err != nil {
		return nil, err
	}
	l, err := datadir.Acquire(p.Dirs.Lock())
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable (%w): choose another --data-dir or fix its permissions", p.Dirs.Data, err)
	}
	return l, nil
}

// cause is a path error's reason alone: the message names the dir already.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writable creates the data dir (and parents) or explains why it cannot.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s is not writable (%w): choose another --data-dir or fix its permissions", dir, cause(err))
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (%w): choose another --data-dir or fix its permissions", dir, cause(err))
	}
	f.Close()
	return os.Remove(f.Name())
}
