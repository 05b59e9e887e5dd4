package gpuhelper

import (
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/outpostk8s/outpost/pkg/gpu/detect"
	"github.com/outpostk8s/outpost/pkg/gpu/gpulib"
	"github.com/outpostk8s/outpost/pkg/gpu/health"
)

// BinaryName is the helper's name in the payload's bin dir.
const BinaryName = "outpost-gpu"

// errNotOpen is what a live call answers outside Open and Close, as NVML itself would.
var errNotOpen = errors.New("GPU helper: NVML is not open")

// Client is gpulib.Lib answered by helper processes: Detect and Preflight each run a helper of
// their own, which exits after the call; Open starts one that lives until Close. No helper runs
// while the agent does not need NVML.
type Client struct {
	Path   string    // the helper binary
	Args   []string  // its flags: the library to load, or the mock
	Stderr io.Writer // where the helper's own log lines go

	mu   sync.Mutex
	live *proc
}

var _ gpulib.Lib = (*Client)(nil)

type proc struct {
	cmd  *exec.Cmd
	rpc  *rpc.Client
	done chan struct{}
}

// pipes is the helper's stdout (read) and stdin (write) as one connection.
type pipes struct {
	io.Reader
	io.Writer
	closers []io.Closer
}

func (p pipes) Close() error {
	for _, c := range p.closers {
		c.Close()
	}
	return nil
}

func (c *Client) start() (*proc, error) {
	// Pipes of our own rather than cmd.StdoutPipe: Wait would close those under the RPC reader.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("GPU helper pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("GPU helper pipe: %w", err)
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.Stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start the GPU helper %s: %w", c.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	p.rpc = rpc.NewClientWithCodec(jsonrpc.NewClientCodec(pipes{Reader: outR, Writer: inW, closers: []io.Closer{inW, outR}}))
	return p, nil
}

// stop closes the helper's stdin, which ends it; a helper stuck in the driver is killed.
func (p *proc) stop() {
	p.rpc.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) call(method string, args, reply any) error {
	err := p.rpc.Call("Lib."+method, args, reply)
	var se rpc.ServerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return unwire(err)
	default: // the transport: the helper died or never answered
		return fmt.Errorf("GPU helper %s: %w: %w", method, gpulib.ErrGone, err)
	}
}

// once runs one call in a helper of its own.
func (c *Client) once(method string, reply any) error {
	p, err := c.start()
	if err != nil {
		return err
	}
	defer p.stop()
	return p.call(method, Empty{}, reply)
}

func (c *Client) Detect() (*detect.Node, error) {
	n := &detect.Node{}
	if err := c.once("Detect", n); err != nil {
		return nil, err
	}
	return n, nil
}

func (c *Client) Preflight() (*gpulib.Preflight, error) {
	p := &gpulib.Preflight{}
	if err := c.once("Preflight", p); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *Client) Open() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live != nil {
		return nil
	}
	p, err := c.start()
	if err != nil {
		return err
	}
	if err := p.call("Open", Empty{}, &Empty{}); err != nil {
		p.stop()
		return err
	}
	c.live = p
	return nil
}

func (c *Client) Close() error {
	c.mu.Lock()
	p := c.live
	c.live = nil
	c.mu.Unlock()
	if p == nil {
		return errNotOpen
	}
	defer p.stop()
	return p.call("Close", Empty{}, &Empty{})
}

func (c *Client) proc() (*proc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == nil {
		return nil, errNotOpen
	}
	return c.live, nil
}

func (c *Client) Readings() ([]gpulib.Reading, error) {
	p, err := c.proc()
	if err != nil {
		return nil, err
	}
	var rs []gpulib.Reading
	return rs, p.call("Readings", Empty{}, &rs)
}

func (c *Client) Probe(uuid string) bool {
	p, err := c.proc()
	if err != nil {
		return false
	}
	var ok bool
	return p.call("Probe", uuid, &ok) == nil && ok
}

func (c *Client) NextEvent(timeout time.Duration) (health.Event, bool, error) {
	p, err := c.proc()
	if err != nil {
		return health.Event{}, false, err
	}
	var r EventReply
	if err := p.call("NextEvent", timeout, &r); err != nil {
		return health.Event{}, false, err
	}
	return r.Event, r.OK, nil
}

// Call makes one argument-less call over conn: for tests of a helper's main.
func Call[T any](conn io.ReadWriteCloser, method string) (*T, error) {
	p := &proc{rpc: rpc.NewClientWithCodec(jsonrpc.NewClientCodec(conn))}
	var r T
	return &r, p.call(method, Empty{}, &r)
}
