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
	"github.com/outpostk8s/outpost/pkg/gpu/mig"
)

// BinaryName is the helper's name in the payload's bin dir.
const BinaryName = "outpost-gpu"

// errNotOpen is what a live call answers outside Open and Close, as NVML itself would.
var errNotOpen = errors.New("GPU helper: NVML is not open")

// Client is gpulib.Lib answered by helper processes: Detect and Preflight each run a helper of
// their own, which exits after the call; Open starts one that lives until Close. No helper runs
// while the agent does not need NVML. A live helper that dies or stops answering is killed and
// replaced at the next call; a call never waits on it past its deadline.
type Client struct {
	Path   string    // the helper binary
	Args   []string  // its flags: the library to load, or the mock
	Stderr io.Writer // where the helper's own log lines go
	// Timeout bounds each call (NextEvent's own wait comes on top); 0 is 30 s.
	Timeout time.Duration

	mu   sync.Mutex
	open bool  // between Open and Close
	live *proc // the helper serving the open session; nil until (re)started
}

var _ gpulib.Lib = (*Client)(nil)

const defaultTimeout = 30 * time.Second

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

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

// call makes one call with a deadline. A helper that dies or does not answer in time is
// killed: the error wraps gpulib.ErrGone.
func (p *proc) call(method string, args, reply any, timeout time.Duration) error {
	c := p.rpc.Go("Lib."+method, args, reply, make(chan *rpc.Call, 1))
	var err error
	select {
	case <-c.Done:
		err = c.Error
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("GPU helper %s: %w: no answer in %s", method, gpulib.ErrGone, timeout)
	}
	var se rpc.ServerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return unwire(err)
	default: // the transport: the helper died
		return fmt.Errorf("GPU helper %s: %w: %w", method, gpulib.ErrGone, err)
	}
}

// kill ends a helper that cannot be asked to stop.
func (p *proc) kill() {
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
	}
	p.rpc.Close()
}

// once runs one call in a helper of its own.
func (c *Client) once(method string, reply any) error {
	p, err := c.start()
	if err != nil {
		return err
	}
	defer p.stop()
	return p.call(method, Empty{}, reply, c.timeout())
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
	if c.open {
		return nil
	}
	if _, err := c.startLive(); err != nil {
		return err
	}
	c.open = true
	return nil
}

// startLive starts the session's helper and opens NVML in it; c.mu is held.
func (c *Client) startLive() (*proc, error) {
	p, err := c.start()
	if err != nil {
		return nil, err
	}
	if err := p.call("Open", Empty{}, &Empty{}, c.timeout()); err != nil {
		p.stop()
		return nil, err
	}
	c.live = p
	return p, nil
}

func (c *Client) Close() error {
	c.mu.Lock()
	p, wasOpen := c.live, c.open
	c.live, c.open = nil, false
	c.mu.Unlock()
	if !wasOpen {
		return errNotOpen
	}
	if p == nil {
		return nil
	}
	defer p.stop()
	return p.call("Close", Empty{}, &Empty{}, c.timeout())
}

// liveCall calls the session's helper, starting a new one if the last died; a helper that
// fails the call at the transport is dropped for the next call to replace.
func (c *Client) liveCall(method string, args, reply any, timeout time.Duration) error {
	c.mu.Lock()
	if !c.open {
		c.mu.Unlock()
		return errNotOpen
	}
	p := c.live
	if p == nil {
		var err error
		if p, err = c.startLive(); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	err := p.call(method, args, reply, timeout)
	if errors.Is(err, gpulib.ErrGone) {
		c.mu.Lock()
		if c.live == p {
			c.live = nil
		}
		c.mu.Unlock()
		p.stop()
	}
	return err
}

func (c *Client) Readings() ([]gpulib.Reading, error) {
	var rs []gpulib.Reading
	if err := c.liveCall("Readings", Empty{}, &rs, c.timeout()); err != nil {
		return nil, err
	}
	return rs, nil
}

func (c *Client) Probe(uuid string) bool {
	var ok bool
	return c.liveCall("Probe", uuid, &ok, c.timeout()) == nil && ok
}

func (c *Client) NextEvent(timeout time.Duration) (health.Event, bool, error) {
	var r EventReply
	if err := c.liveCall("NextEvent", timeout, &r, timeout+c.timeout()); err != nil {
		return health.Event{}, false, err
	}
	return r.Event, r.OK, nil
}

// ApplyMIG runs in a helper of its own, as Detect does: a MIG change is rare, and the live
// helper (if any) keeps serving readings meanwhile.
func (c *Client) ApplyMIG(p mig.GPUPlan) (mig.Result, error) {
	h, err := c.start()
	if err != nil {
		return mig.Result{}, err
	}
	defer h.stop()
	var r mig.Result
	// Creating instances on eight GPUs takes seconds on real hardware; a mode change longer.
	err = h.call("ApplyMIG", p, &r, 2*time.Minute+c.timeout())
	return r, err
}

// CDISpec runs in a helper of its own, as Detect does.
func (c *Client) CDISpec(o gpulib.CDIOptions) (*gpulib.CDISpec, error) {
	h, err := c.start()
	if err != nil {
		return nil, err
	}
	defer h.stop()
	r := &gpulib.CDISpec{}
	if err := h.call("CDISpec", o, r, c.timeout()); err != nil {
		return nil, err
	}
	return r, nil
}

// ValidateTimeout bounds one Validate call: the devices are checked at once, each in a process
// of its own that the helper gives up on a little earlier.
const ValidateTimeout = 75 * time.Second

// Validate runs in a helper of its own, which runs one more per device: a check takes about a
// second on real hardware, a JIT compile of the kernel included.
func (c *Client) Validate(ids []string) ([]gpulib.Validation, error) {
	h, err := c.start()
	if err != nil {
		return nil, err
	}
	defer h.stop()
	var r []gpulib.Validation
	err = h.call("Validate", ids, &r, ValidateTimeout)
	return r, err
}

// Call makes one argument-less call over conn: for tests of a helper's main.
func Call[T any](conn io.ReadWriteCloser, method string) (*T, error) {
	p := &proc{rpc: rpc.NewClientWithCodec(jsonrpc.NewClientCodec(conn))}
	var r T
	if err := p.call(method, Empty{}, &r, defaultTimeout); err != nil {
		return nil, err
	}
	return &r, nil
}
